package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"dicomgate/gateway/mail"
	"dicomgate/gateway/mail/mailsql"
)

// outboxCmd lists the gateway's email outbox: every message with its
// delivery state, so staff can see what was sent, what waits and why
// something failed. It shows no message bodies: they carry identity codes.
type outboxCmd struct {
	Data  string `name:"data" env:"DICOMGATE_DATA" default:"./data" help:"Data directory of the gateway; the outbox is in DIR/gateway.db."`
	DB    string `name:"db" env:"DICOMGATE_DB" help:"PostgreSQL DSN (postgres://…); SQLite under --data when empty."`
	Limit int    `name:"limit" default:"100" help:"Show at most this many messages, newest first."`
}

// gatewayDBName is the SQLite file under the data directory that the
// gateway's components share.
const gatewayDBName = "gateway.db"

// listColumnWidth bounds the free-text columns of the listing.
const listColumnWidth = 60

func (c *outboxCmd) Run(rc *runContext) error {
	return c.list(rc.ctx, os.Stdout)
}

// list writes the outbox as a table to w.
func (c *outboxCmd) list(ctx context.Context, w io.Writer) error {
	if c.Limit <= 0 {
		return fmt.Errorf("--limit must be positive, not %d", c.Limit)
	}
	store, err := openOutbox(ctx, c.Data, c.DB)
	if err != nil {
		return err
	}
	defer store.Close()
	records, err := store.List(ctx, c.Limit)
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	return writeOutboxTable(w, records)
}

// openOutbox opens the outbox in PostgreSQL when dsn is set, else in the
// data directory's SQLite file, which must exist already: listing should not
// create an empty database where the gateway never ran.
func openOutbox(ctx context.Context, dataDir, dsn string) (*mailsql.Store, error) {
	if dsn != "" {
		s, err := mailsql.OpenPostgres(ctx, dsn)
		if err != nil {
			return nil, fmt.Errorf("outbox: %w", err)
		}
		return s, nil
	}
	path := filepath.Join(dataDir, gatewayDBName)
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("outbox: no gateway database at %s (is --data the gateway's data directory?)", path)
		}
		return nil, fmt.Errorf("outbox: %w", err)
	}
	s, err := mailsql.OpenSQLite(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	return s, nil
}

// writeOutboxTable writes records as an aligned table.
func writeOutboxTable(w io.Writer, records []mail.Record) error {
	if len(records) == 0 {
		_, err := fmt.Fprintln(w, "The outbox is empty.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTO\tSUBJECT\tSTATE\tATTEMPTS\tLAST ERROR\tCREATED")
	for _, r := range records {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\n",
			r.ID, cell(r.To), cell(r.Subject), r.State, r.Attempts, cell(r.LastError),
			r.Created.Local().Format(time.DateTime))
	}
	return tw.Flush()
}

// cell makes s fit one table cell: one line, no tabs, bounded length.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); len(r) > listColumnWidth {
		s = string(r[:listColumnWidth-1]) + "…"
	}
	return s
}
