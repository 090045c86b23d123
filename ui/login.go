package ui

import (
	"context"
	"errors"
	"strings"
)

// loginForm is how one UI asks for a login's parts; runLogin is the one
// loop over them, so the dialogs and the terminal retry alike.
type loginForm interface {
	// askURL asks for the server URL, prefilled with def.
	askURL(ctx context.Context, def string) (string, error)
	// askAccount asks for the user and password on url.
	askAccount(ctx context.Context, url string) (user, password string, err error)
	// refused shows why the server refused (the error is "…; try again").
	refused(ctx context.Context, err error) error
	// pick asks which instance to join ("" for a new one).
	pick(ctx context.Context, l Login, c Credentials) (string, error)
}

// runLogin asks for the server URL, then user and password until the
// server accepts them: a refused password asks for the account again on
// the same server, any other refusal (the URL may be wrong) starts again
// from the URL, prefilled with the last one. Then it asks which instance
// to join.
func runLogin(ctx context.Context, f loginForm, l Login) (Credentials, error) {
	url := l.URL
	for {
		if err := ctx.Err(); err != nil {
			return Credentials{}, err
		}
		var err error
		if url, err = f.askURL(ctx, url); err != nil {
			return Credentials{}, err
		}
		url = strings.TrimSpace(url)
		for {
			user, pw, err := f.askAccount(ctx, url)
			if err != nil {
				return Credentials{}, err
			}
			c := Credentials{URL: url, User: strings.TrimSpace(user), Password: pw}
			if l.Check != nil {
				if err := l.Check(ctx, c.URL, c.User, c.Password); err != nil {
					if rerr := f.refused(ctx, err); rerr != nil {
						return Credentials{}, rerr
					}
					if errors.Is(err, ErrBadCredentials) {
						continue // same server, ask for the account again
					}
					break // maybe the URL is wrong: ask from the start
				}
			}
			if l.Instances != nil {
				if c.Join, err = f.pick(ctx, l, c); err != nil {
					return Credentials{}, err
				}
			}
			return c, nil
		}
	}
}
