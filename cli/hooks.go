package cli

import (
	"context"

	"git.timemachine.center/timemachine/instance-sync/launcher"
)

// cmdHooks wires instance-sync into Prism Launcher, MultiMC or ATLauncher.
func cmdHooks(ctx context.Context, env Env, args []string) int {
	return launcher.Command(ctx, args, env.Exe, env.Stdout, env.Stderr)
}
