// Command cloud-svc is the operator's server for instance-sync: the restic
// REST data plane for players and an admin API, see package cloudsvc.
package main

import (
	"os"

	"git.timemachine.center/timemachine/instance-sync/cloudsvc"
)

func main() {
	os.Exit(cloudsvc.Main(os.Args[1:], os.Stdout, os.Stderr))
}
