package cli

import (
	"context"
	"fmt"
)

// cmdHooks wires instance-sync into a launcher.
func cmdHooks(_ context.Context, env Env, _ []string) int {
	fmt.Fprintln(env.Stderr, "instance-sync: hooks: not available in this build")
	return ExitError
}
