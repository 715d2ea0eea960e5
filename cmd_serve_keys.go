package main

import (
	"context"
	"log/slog"

	"tyst/store"
)

// warnKeys logs, at every start, what the operator must act on about the
// newsroom keys: a generated key beside the data, stored items under a key
// that is not configured, and a generated files.key that is no longer the
// primary key, with the number of items it still covers. Keys and paths
// are never logged; key ids are.
func warnKeys(ctx context.Context, log *slog.Logger, db *store.DB, keys *store.Keyring, src store.KeySource, dataDir string) error {
	if src == store.KeyFromDataDir {
		log.Warn("NO NEWSROOM KEY GIVEN: using a generated key stored beside the data (files.key in the data directory). " +
			"Anyone who copies the data directory can read everything. Set PROJECT_FILES_KEY or --key-file for production; see the README.")
	}
	usage, err := db.KeyUsage(ctx)
	if err != nil {
		return err
	}
	for id, n := range usage {
		if !keys.Known(id) && n > 0 {
			log.Warn("stored items are wrapped by a newsroom key that is not configured: add it to PROJECT_FILES_OLD_KEYS", "key_id", id, "items", n)
		}
	}
	if src == store.KeyFromDataDir {
		return nil
	}
	genID, err := store.GeneratedKeyID(dataDir)
	switch {
	case err != nil:
		log.Warn("the generated key file (files.key in the data directory) cannot be checked", "err", err)
	case genID == "" || genID == keys.PrimaryID():
	case usage[genID] > 0:
		log.Warn("a generated key (files.key in the data directory) still lies beside the data and covers stored items: "+
			"keep it in PROJECT_FILES_OLD_KEYS until tyst rekey has moved them to the primary key, then remove the file",
			"key_id", genID, "items", usage[genID])
	default:
		log.Warn("a generated key (files.key in the data directory) still lies beside the data but covers no stored items: "+
			"remove the file (keep an offline copy if backups were made under it)", "key_id", genID, "items", 0)
	}
	return nil
}
