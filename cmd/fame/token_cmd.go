package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/fame-go/fame/config"
	"github.com/fame-go/fame/node/admit"
)

func init() { register("token", runToken) }

// runToken prints an OAuth2 access token obtained with the node admission credentials of the
// environment (FAME_ADMISSION_TOKEN_URL, FAME_ADMISSION_CLIENT_ID / _SECRET, FAME_JWT_AUDIENCE,
// FAME_CA_CERTS), the token a node of the direct or welcome profile presents:
//
//	fame token [-timeout 10s]
//
// It is what an HTTP caller of the gateway sends as its bearer (curl -H "Authorization: Bearer
// $(fame token)"); in the compose stack, `docker compose run client /fame token` prints the
// math client's.
func runToken(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("token: unexpected arguments %v", fs.Args())
	}
	env := func(k string) (string, bool) { return os.LookupEnv(k) }
	adm, err := config.Admit(env, admit.Options{})
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	if adm.OAuth2 == nil {
		return errors.New("token: FAME_ADMISSION_PROFILE " + adm.Profile + " has no OAuth2 client credentials (direct or welcome with FAME_ADMISSION_TOKEN_URL)")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	tok, err := adm.OAuth2.Token(ctx)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	_, err = fmt.Println(tok)
	return err
}
