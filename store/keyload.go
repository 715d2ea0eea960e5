package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeySource says where the primary newsroom key came from.
type KeySource string

// Key sources.
const (
	KeyFromEnv     KeySource = "env"       // PROJECT_FILES_KEY
	KeyFromFile    KeySource = "file"      // --key-file
	KeyFromDataDir KeySource = "generated" // <data>/files.key, beside the data
	keyFileName              = "files.key"
)

// KeyConfig is what the operator gave for the newsroom keys.
type KeyConfig struct {
	Env     string // value of PROJECT_FILES_KEY, may be empty
	File    string // --key-file, may be empty; wins over Env
	OldKeys string // PROJECT_FILES_OLD_KEYS, comma separated
	DataDir string // where files.key is generated when neither is given
	// NoGenerate makes a missing files.key an error instead of generating
	// one: for tools that must use the key the server already uses.
	NoGenerate bool
}

// LoadKeyring builds the keyring from cfg. With neither a key file nor a key
// in the environment it reads <data>/files.key, generating it (0600) on first
// use; the caller must then warn that the key lies beside the data. Errors
// name the setting, never its value.
func LoadKeyring(cfg KeyConfig) (*Keyring, KeySource, error) {
	var primary string
	var src KeySource
	switch {
	case cfg.File != "":
		b, err := os.ReadFile(cfg.File)
		if err != nil {
			return nil, "", fmt.Errorf("key file (--key-file) cannot be read: %w", stripPaths(err))
		}
		primary, src = strings.TrimSpace(string(b)), KeyFromFile
		if _, err := parseKey(primary); err != nil {
			return nil, "", fmt.Errorf("key file (--key-file) does not hold a Fernet key (32 bytes, base64url)")
		}
	case cfg.Env != "":
		primary, src = strings.TrimSpace(cfg.Env), KeyFromEnv
		if _, err := parseKey(primary); err != nil {
			return nil, "", fmt.Errorf("PROJECT_FILES_KEY is not a Fernet key (32 bytes, base64url)")
		}
	default:
		if _, err := os.Stat(filepath.Join(cfg.DataDir, keyFileName)); cfg.NoGenerate && errors.Is(err, fs.ErrNotExist) {
			return nil, "", errors.New("no newsroom key: give --key-file or PROJECT_FILES_KEY, as the server gets it")
		}
		k, err := loadOrGenerate(filepath.Join(cfg.DataDir, keyFileName))
		if err != nil {
			return nil, "", err
		}
		primary, src = k, KeyFromDataDir
	}
	all := []string{primary}
	if strings.TrimSpace(cfg.OldKeys) != "" {
		for i, s := range strings.Split(cfg.OldKeys, ",") {
			s = strings.TrimSpace(s)
			if _, err := parseKey(s); err != nil {
				return nil, "", fmt.Errorf("PROJECT_FILES_OLD_KEYS: key %d is not a Fernet key (32 bytes, base64url)", i+1)
			}
			all = append(all, s)
		}
	}
	kr, err := NewKeyring(all...)
	return kr, src, err
}

func loadOrGenerate(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		k := strings.TrimSpace(string(b))
		if _, err := parseKey(k); err != nil {
			return "", errors.New("generated key file (files.key in the data directory) does not hold a Fernet key")
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("generated key file cannot be read: %w", stripPaths(err))
	}
	k := GenerateKey()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("generated key file cannot be written: %w", stripPaths(err))
	}
	if _, err := f.WriteString(k + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("generated key file cannot be written: %w", stripPaths(err))
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", fmt.Errorf("generated key file cannot be written: %w", stripPaths(err))
	}
	return k, f.Close()
}
