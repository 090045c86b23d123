package cli

import (
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

	"git.timemachine.center/timemachine/instance-sync/engine"
	"git.timemachine.center/timemachine/instance-sync/instance"
	"git.timemachine.center/timemachine/instance-sync/remote"
	"git.timemachine.center/timemachine/instance-sync/ui"
)

// DefaultURL is the Timemachine Network's server, prefilled in setup.
const DefaultURL = "https://cloud.tm.center"

// cmdSetup opts an instance in interactively: the login dialog when there
// is a display, else prompts on a terminal. Hooks never get here, so
// reading stdin is fine, but only when it is a terminal.
func cmdSetup(ctx context.Context, env Env, args []string) error {
	c := newCommand(env, "setup", "", withPack|withInsecure|withLabel|withGUI)
	urlFlag := c.fs.String("url", "", "`URL` the server (default "+DefaultURL+")")
	force := c.fs.Bool("force", false, "replace an existing setup")
	o, err := c.setup(args, c.noArgs)
	if err != nil {
		return err
	}
	u, err := setupUI(env, c, o.UI)
	if err != nil {
		return err
	}
	o.UI = u
	p := instance.Paths{Pack: o.PackFolder}
	if _, err := os.Stat(p.Config()); err == nil && !*force {
		return fail(o, fmt.Errorf("%s is already set up; \"instance-sync status\" shows it, --force replaces it", o.PackFolder))
	}
	def := *urlFlag
	if def == "" {
		def = DefaultURL
	}
	u.Info("setting up sync for " + o.PackFolder)
	creds, err := u.Login(ctx, ui.Login{
		URL: def,
		Check: func(ctx context.Context, server, user, pw string) error {
			return checkLogin(ctx, server, user, pw, o.InsecureHTTP)
		},
		Instances: func(ctx context.Context, cr ui.Credentials) ([]ui.Instance, bool) {
			list, ok := ListInstances(ctx, remote.Server{URL: strings.TrimRight(cr.URL, "/"), User: cr.User, Password: cr.Password})
			out := make([]ui.Instance, len(list))
			for i, l := range list {
				out[i] = ui.Instance{ID: l.ID, Label: l.Label, Host: l.Host, LastPush: l.LastPush, Size: l.Size}
			}
			return out, ok
		},
	})
	if err != nil {
		return err
	}
	tok := instance.Token{User: creds.User, Password: creds.Password}
	cfg, err := engine.Init(ctx, engine.InitOptions{Options: o, URL: creds.URL, Token: tok, Join: creds.Join, Force: *force})
	if err != nil {
		return fail(o, err)
	}
	msg := fmt.Sprintf("done: instance %s is synced (pull before the game starts, push after it exits)", cfg.InstanceID)
	if d, ok := u.(*ui.Dialogs); ok {
		d.Notify(msg)
	} else {
		u.Info(msg)
	}
	return nil
}

// setupUI is the UI that can log the player in: the dialogs when chosen,
// else a terminal reading stdin, but only when stdin is a terminal.
func setupUI(env Env, c *command, chosen ui.UI) (ui.UI, error) {
	if _, ok := chosen.(*ui.Dialogs); ok {
		return chosen, nil
	}
	if env.IsTerminal == nil || !env.IsTerminal() {
		return nil, errors.New("setup needs a display or a terminal; from scripts use \"instance-sync init --url=URL --token-file=FILE\"")
	}
	t := ui.NewTerminal(env.Stdout, ui.Choose(c.uiFacts(env)).Color)
	t.In = env.Stdin
	if f, ok := env.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		t.ReadPassword = func() (string, error) {
			b, err := term.ReadPassword(int(f.Fd()))
			return string(b), err
		}
	}
	return t, nil
}

// checkLogin validates a server URL and credentials before anything is
// written; a refused password wraps ui.ErrBadCredentials so the UI asks
// for it again.
func checkLogin(ctx context.Context, server, user, pw string, insecure bool) error {
	if _, err := remote.CheckURL(server, insecure); err != nil {
		return err
	}
	srv := remote.Server{URL: strings.TrimRight(server, "/"), User: user, Password: pw}
	err := srv.Check(ctx, "00000000000000000000000000")
	if errors.Is(err, remote.ErrAuth) {
		return badLogin{err}
	}
	return err
}

type badLogin struct{ err error }

func (b badLogin) Error() string        { return b.err.Error() }
func (b badLogin) Unwrap() error        { return b.err }
func (b badLogin) Is(target error) bool { return target == ui.ErrBadCredentials }

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

// cmdCopy settles a copied instance folder that the hooks do not sync as
// its original: --same syncs it as the same instance, --new makes it a new
// instance ("instance-sync disable" leaves it unsynced).
func cmdCopy(ctx context.Context, env Env, args []string) error {
	c := newCommand(env, "copy", "--same | --new", withPack|withToken|withInsecure|withLabel)
	same := c.fs.Bool("same", false, "sync this copy as the same instance as its original (one shared history)")
	asNew := c.fs.Bool("new", false, "make this copy a new instance with its own history")
	o, err := c.setup(args, func() error {
		if *same == *asNew || c.fs.NArg() > 0 {
			return usagef("copy needs --same or --new (\"instance-sync disable\" leaves a copy unsynced)")
		}
		return nil
	})
	if err != nil {
		return err
	}
	var tok *instance.Token
	if raw := env.Getenv("INSTANCE_SYNC_TOKEN"); raw != "" && c.tokenFile == "" {
		t, err := instance.ParseToken(raw)
		if err != nil {
			return usagef("$INSTANCE_SYNC_TOKEN: %v", err)
		}
		tok = &t
	}
	cfg, err := engine.ResolveCopy(ctx, o, *asNew, tok)
	if err != nil {
		return err
	}
	if *asNew {
		fmt.Fprintf(env.Stdout, "this copy is now instance %s, with its own history from its next push\n", cfg.InstanceID)
	} else {
		fmt.Fprintf(env.Stdout, "this copy syncs as instance %s, sharing its history\n", cfg.InstanceID)
	}
	return nil
}
