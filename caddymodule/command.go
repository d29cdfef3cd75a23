package caddymodule

import (
	"os"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/keybrake/keybrake/cli"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "keybrake",
		Usage: "<issue|keys|patch|revoke|audit|summary|tokens|resolve> [flags]",
		Short: "Issues, lists and revokes vault keys; shows audit and summaries",
		Long: `
Talks to a running Keybrake's key API (/vault/*), the same calls as curl.

The site is $KEYBRAKE_URL (default http://localhost:8080) and the token
$KEYBRAKE_API_TOKEN. Tables are for people; --json prints the API's JSON for
scripts. Exit codes: 0 ok, 1 the API refused, 2 usage error, 3 Keybrake
unreachable. Run "caddy keybrake help" for the commands.
`,
		CobraFunc: func(cmd *cobra.Command) {
			// The CLI parses its own subcommands and flags.
			cmd.DisableFlagParsing = true
			cmd.RunE = func(_ *cobra.Command, args []string) error {
				if code := cli.Main(args, cli.FromEnv(os.Stdout, os.Stderr)); code != 0 {
					os.Exit(code)
				}
				return nil
			}
		},
	})
}
