// Command isync-demo shows instance-sync end to end with nothing to
// install: a rest-server (append-only, private repos) in-process on
// loopback, a demo account, a sample instance in a temp folder, then
// init → push → join from a second folder → pull, printing each step.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"

	"git.timemachine.center/timemachine/instance-sync/cli"
	"git.timemachine.center/timemachine/instance-sync/internal/testserver"
)

func main() { os.Exit(run()) }

func run() int {
	log.SetOutput(io.Discard) // rest-server logs every repository it creates
	keep := len(os.Args) > 1 && os.Args[1] == "--keep"
	tmp, err := os.MkdirTemp("", "instance-sync-demo-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	if !keep {
		defer os.RemoveAll(tmp)
	}
	srv, err := testserver.Start(filepath.Join(tmp, "server"), "", map[string]string{"demo": "demo-password"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	defer srv.Close()
	fmt.Printf("rest-server (append-only, private repos) on %s, data in %s\n\n", srv.URL, srv.DataDir)

	laptop := filepath.Join(tmp, "laptop", "minecraft")
	desktop := filepath.Join(tmp, "desktop", "My Pack", "minecraft")
	files := map[string]string{
		"saves/Survival/level.dat":            "level data v1",
		"saves/Survival/region/r.0.0.mca":     strings.Repeat("region ", 4096),
		"saves/Survival/playerdata/steve.dat": "steve",
		"options.txt":                         "fov:90\n",
		"mods/sodium.jar":                     "a mod: outside the sync scope",
		"logs/latest.log":                     "a log: never synced",
	}
	for p, c := range files {
		must(write(filepath.Join(laptop, p), c))
	}
	must(write(filepath.Join(desktop, "mods/sodium.jar"), "a mod: outside the sync scope"))
	must(os.WriteFile(filepath.Join(tmp, "token"), []byte("demo:demo-password\n"), 0o600))

	step := func(title string, args ...string) bool {
		fmt.Printf("$ instance-sync %s\n", strings.Join(args, " "))
		code := cli.Main(context.Background(), cli.Env{Args: args, Stdout: indent{os.Stdout}, Stderr: indent{os.Stderr}, Getenv: os.Getenv})
		fmt.Printf("  → exit %d (%s)\n\n", code, title)
		return code == 0
	}
	tokenFile := "--token-file=" + filepath.Join(tmp, "token")
	if !step("laptop opts in", "init", "--url="+srv.URL, tokenFile, "--pack-folder="+laptop) {
		return 1
	}
	id := instanceID(laptop)
	if !step("laptop uploads its worlds", "push", "--pack-folder="+laptop) ||
		!step("desktop joins the same instance", "init", "--url="+srv.URL, tokenFile, "--join="+id, "--pack-folder="+desktop) ||
		!step("desktop gets the laptop's worlds", "pull", "--pack-folder="+desktop) {
		return 1
	}
	must(write(filepath.Join(desktop, "saves/Survival/level.dat"), "level data v2: played on the desktop"))
	if !step("desktop uploads new progress", "push", "--pack-folder="+desktop) ||
		!step("laptop fast-forwards", "pull", "--pack-folder="+laptop) ||
		!step("nothing changed: no restic run", "pull", "--pack-folder="+laptop) {
		return 1
	}
	got, _ := os.ReadFile(filepath.Join(laptop, "saves/Survival/level.dat"))
	fmt.Printf("laptop's saves/Survival/level.dat now reads %q\n", got)
	if _, err := os.Stat(filepath.Join(desktop, "logs/latest.log")); os.IsNotExist(err) {
		fmt.Println("desktop has no logs/latest.log: logs are never synced")
	}
	if string(got) != "level data v2: played on the desktop" {
		fmt.Println("demo: unexpected content")
		return 1
	}
	fmt.Println("demo finished: both computers have the same worlds and options")
	if keep {
		fmt.Println("files kept in", tmp)
	}
	return 0
}

func instanceID(pack string) string {
	data, err := os.ReadFile(filepath.Join(pack, ".cloud-sync", "sync.json"))
	must(err)
	_, rest, _ := strings.Cut(string(data), `"instance_id": "`)
	id, _, _ := strings.Cut(rest, `"`)
	return id
}

func write(p, content string) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, []byte(content), 0o644)
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// indent prefixes the tool's output so the steps stand out.
type indent struct{ w io.Writer }

func (i indent) Write(p []byte) (int, error) {
	s := strings.ReplaceAll(strings.TrimRight(string(p), "\n"), "\n", "\n  ")
	_, err := fmt.Fprintf(i.w, "  %s\n", s)
	return len(p), err
}
