package engine

import (
	"errors"

	"git.timemachine.center/timemachine/instance-sync/instance"
	"git.timemachine.center/timemachine/instance-sync/watch"
)

// Watch runs the change watcher of the pack folder (package watch) until
// something in scope changes, a push asks it, or watch.MaxAge passes. It
// takes no lock: it only reads, and runs for as long as the game does.
func Watch(opt Options) error {
	if err := opt.defaults(); err != nil {
		return err
	}
	paths := instance.Paths{Pack: opt.PackFolder}
	if _, err := paths.LoadConfig(); err != nil {
		return err
	}
	sc, err := paths.LoadScope()
	if err != nil {
		return err
	}
	st, err := paths.LoadState()
	if err != nil {
		return err
	}
	sc = sc.Without(st.Unportable) // the scope the pull and push use
	base, ok := watchBase(&st, sc)
	if !ok {
		return errors.New("not watching: the last sync left work for the next push")
	}
	return watch.Serve(opt.PackFolder, sc, base, watch.MaxAge)
}
