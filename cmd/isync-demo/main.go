// Command isync-demo shows instance-sync end to end with nothing to
// install: cloud-svc (the upstream rest-server, append-only, private repos,
// plus the admin API) in-process on loopback, a demo player provisioned
// through the admin API, a sample instance in a temp folder, then
// init → push → join from a second folder → pull, printing each step.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"git.timemachine.center/timemachine/instance-sync/cli"
	"git.timemachine.center/timemachine/instance-sync/cloudsvc"
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
	srvURL, token, stop, err := startCloud(filepath.Join(tmp, "cloud-svc"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	defer stop()

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
	must(os.WriteFile(filepath.Join(tmp, "token"), []byte(token+"\n"), 0o600))

	step := func(title string, args ...string) bool {
		fmt.Println(commandLine(args))
		// Each folder plays one computer: its snapshots carry that name.
		computer := "laptop"
		if strings.Contains(strings.Join(args, " "), desktop) {
			computer = "desktop"
		}
		// Each computer keeps its tokens in its own user folders, in the
		// temp folder.
		home := filepath.Join(tmp, computer+"-home")
		getenv := func(k string) string {
			switch k {
			case "INSTANCE_SYNC_HOSTNAME":
				return computer
			case "HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "AppData", "LocalAppData":
				return filepath.Join(home, k)
			}
			return os.Getenv(k)
		}
		code := cli.Main(context.Background(), cli.Env{Args: args, Stdout: indent{os.Stdout}, Stderr: indent{os.Stderr}, Getenv: getenv})
		fmt.Printf("  → exit %d (%s)\n\n", code, title)
		return code == 0
	}
	tokenFile := "--token-file=" + filepath.Join(tmp, "token")
	if !step("laptop opts in", "init", "--url="+srvURL, tokenFile, "--pack-folder="+laptop) {
		return 1
	}
	id := instanceID(laptop)
	if !step("laptop uploads its worlds", "push", "--pack-folder="+laptop) ||
		!step("desktop joins the same instance", "init", "--url="+srvURL, tokenFile, "--join="+id, "--pack-folder="+desktop) ||
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

// commandLine is the command as the player would type it into a POSIX
// shell: a value with spaces or quotes is single-quoted (after the "=" of
// a --flag=value), so the line can be pasted and run.
func commandLine(args []string) string {
	var b strings.Builder
	b.WriteString("$ instance-sync")
	for _, a := range args {
		b.WriteByte(' ')
		if name, value, ok := strings.Cut(a, "="); ok && strings.HasPrefix(a, "--") && !needsQuotes(name) {
			b.WriteString(name + "=" + shellQuote(value))
			continue
		}
		b.WriteString(shellQuote(a))
	}
	return b.String()
}

func needsQuotes(s string) bool {
	return s == "" || strings.ContainsAny(s, " \t\n'\"\\$`!&|;<>()*?[]#~{}")
}

func shellQuote(s string) string {
	if !needsQuotes(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
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

// startCloud runs cloud-svc on two free loopback ports and provisions the
// player "demo" through its admin API, as a Discord bot would.
func startCloud(data string) (url, token string, stop func(), err error) {
	public, admin := freePort(), freePort()
	if public == "" || admin == "" {
		return "", "", nil, fmt.Errorf("no free loopback port")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var logs strings.Builder
	go func() {
		done <- cloudsvc.MainContext(ctx, []string{"--data", data, "--listen", public, "--admin-listen", admin,
			"--retention-interval", "0"}, io.Discard, &logs)
	}()
	stop = func() { cancel(); <-done }
	url = "http://" + public
	adminURL := "http://" + admin
	tokenFile := filepath.Join(data, "admin.token")
	for i := 0; ; i++ {
		resp, herr := http.Get(url + "/healthz")
		if herr == nil {
			resp.Body.Close()
			if _, ferr := os.Stat(tokenFile); ferr == nil {
				break
			}
		}
		select {
		case code := <-done:
			return "", "", nil, fmt.Errorf("cloud-svc exited with %d: %s", code, logs.String())
		case <-time.After(100 * time.Millisecond):
		}
		if i > 100 {
			stop()
			return "", "", nil, fmt.Errorf("cloud-svc did not start: %s", logs.String())
		}
	}
	fmt.Printf("cloud-svc: public port %s (restic REST, append-only, private repos), admin API %s\n", url, adminURL)
	adminToken, err := os.ReadFile(tokenFile)
	if err != nil {
		stop()
		return "", "", nil, err
	}
	req, _ := http.NewRequest(http.MethodPost, adminURL+"/accounts", strings.NewReader(`{"user":"demo"}`))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(adminToken)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		stop()
		return "", "", nil, err
	}
	defer resp.Body.Close()
	var created struct {
		User, Token, URL string
	}
	if err := json.NewDecoder(resp.Body).Decode(&created); err != nil || created.Token == "" {
		stop()
		return "", "", nil, fmt.Errorf("provisioning the demo player: %s %v", resp.Status, err)
	}
	fmt.Printf("$ curl -H 'Authorization: Bearer …' -d '{\"user\":\"demo\"}' %s/accounts\n  → player %q provisioned (token shown once, kept in a 0600 file)\n\n", adminURL, created.User)
	return url, created.Token, stop, nil
}

func freePort() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return ""
	}
	defer ln.Close()
	return ln.Addr().String()
}
