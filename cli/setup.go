package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	instancesync "git.timemachine.center/timemachine/instance-sync"
	"git.timemachine.center/timemachine/instance-sync/instance"
	"git.timemachine.center/timemachine/instance-sync/remote"
	"git.timemachine.center/timemachine/instance-sync/ui"
)

// DefaultURL is the Timemachine Network's server, prefilled in setup.
const DefaultURL = "https://cloud.tm.center"

// cmdSetup opts an instance in interactively: the UI's login (a dialog)
// when there is one, else prompts on a terminal. Hooks never get here, so
// reading stdin is fine, but only when it is a terminal.
func cmdSetup(ctx context.Context, env Env, args []string) error {
	var c common
	fs := newFlags(env, "setup", &c)
	urlFlag := fs.String("url", "", "server URL (default "+DefaultURL+")")
	force := fs.Bool("force", false, "replace an existing setup")
	if err := parse(fs, args); err != nil {
		return err
	}
	o, err := c.options(env)
	if err != nil {
		return err
	}
	if env.IsTerminal == nil || !env.IsTerminal() {
		return errors.New("setup needs a terminal (or, later, a display); from scripts use \"instance-sync init --url=URL --token-file=FILE\"")
	}
	in := bufio.NewReader(env.Stdin)
	p := instance.Paths{Pack: o.PackFolder}
	if _, err := os.Stat(p.Config()); err == nil && !*force {
		return fmt.Errorf("%s is already set up; \"instance-sync status\" shows it, --force replaces it", o.PackFolder)
	}
	def := *urlFlag
	if def == "" {
		def = DefaultURL
	}
	fmt.Fprintf(env.Stdout, "Setting up sync for %s\n", o.PackFolder)
	for {
		server := prompt(env, in, fmt.Sprintf("Server URL [%s]: ", def))
		if server == "" {
			server = def
		}
		if _, err := remote.CheckURL(server, o.InsecureHTTP); err != nil {
			fmt.Fprintf(env.Stdout, "%v\n", err)
			continue
		}
		user := prompt(env, in, "User: ")
		fmt.Fprint(env.Stdout, "Password: ")
		pw, err := readPassword(env, in)
		fmt.Fprintln(env.Stdout)
		if err != nil {
			return err
		}
		tok := instance.Token{User: user, Password: pw}
		srv := remote.Server{URL: strings.TrimRight(server, "/"), User: user, Password: pw}
		if err := srv.Check(ctx, "00000000000000000000000000"); err != nil {
			fmt.Fprintf(env.Stdout, "%v; try again\n", err)
			if errors.Is(err, remote.ErrAuth) {
				continue
			}
			return err
		}
		join := pickInstance(ctx, env, in, srv)
		cfg, err := instancesync.Init(ctx, instancesync.InitOptions{Options: o, URL: server, Token: tok, Join: join, Force: *force})
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "done: instance %s is synced (pull before the game starts, push after it exits)\n", cfg.InstanceID)
		return nil
	}
}

func prompt(env Env, in *bufio.Reader, q string) string {
	fmt.Fprint(env.Stdout, q)
	line, _ := in.ReadString('\n')
	return strings.TrimSpace(line)
}

func readPassword(env Env, in *bufio.Reader) (string, error) {
	if f, ok := env.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		b, err := term.ReadPassword(int(f.Fd()))
		return string(b), err
	}
	line, err := in.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimSpace(line), nil
}

// Listed is one of the player's instances as a cloud-svc server lists it.
type Listed struct {
	ID       string    `json:"id"`
	Label    string    `json:"label"`
	LastPush time.Time `json:"last_push"`
	Host     string    `json:"host"`
	Size     int64     `json:"size"`
}

// ListInstances asks the server for the player's instances (GET /<user>/).
// A plain rest-server does not list them: ok is false then.
func ListInstances(ctx context.Context, srv remote.Server) (list []Listed, ok bool) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/"+url.PathEscape(srv.User)+"/", nil)
	if err != nil {
		return nil, false
	}
	req.SetBasicAuth(srv.User, srv.Password)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		return nil, false
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&list); err != nil {
		return nil, false
	}
	return list, true
}

// pickInstance offers the player's instances, or asks for an id. It
// returns "" for a new instance.
func pickInstance(ctx context.Context, env Env, in *bufio.Reader, srv remote.Server) string {
	list, ok := ListInstances(ctx, srv)
	if ok && len(list) > 0 {
		fmt.Fprintln(env.Stdout, "Your instances in the cloud:")
		for i, l := range list {
			fmt.Fprintf(env.Stdout, "  %d) %s  (%s, last played on %s %s, %s)\n", i+1, l.Label, l.ID, l.Host, l.LastPush.Local().Format(time.DateTime), ui.HumanBytes(l.Size))
		}
		for {
			ans := prompt(env, in, "Join which one? number, or Enter for a new instance: ")
			if ans == "" {
				return ""
			}
			var n int
			if _, err := fmt.Sscanf(ans, "%d", &n); err == nil && n >= 1 && n <= len(list) {
				return list[n-1].ID
			}
			fmt.Fprintln(env.Stdout, "please answer with one of the numbers")
		}
	}
	return prompt(env, in, "Instance id to join (from \"instance-sync status\" on your other computer), or Enter for a new instance: ")
}
