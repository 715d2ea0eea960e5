package store

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"tyst/internal/dirsync"
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

// maxKeyFileBytes bounds what a key file is read for: a key is 44
// characters, so this leaves room for line endings and blanks, and a
// mistaken --key-file (a disk image, /dev/zero) costs nothing.
const maxKeyFileBytes = 1 << 10

// Settings as messages name them: the setting, never its value.
const (
	settingKeyFile   = "key file (--key-file / TYST_KEY_FILE)"
	settingGenerated = "generated key file (files.key in the data directory)"
	settingDataDir   = "data directory (--data / TYST_DATA_DIR)"
)

// ErrKeyFileExists is returned by CreateKeyFile when the file exists
// already: a key file is never overwritten.
var ErrKeyFileExists = errors.New("the key file exists already; a key is never overwritten")

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
// use; the caller must then warn that the key lies beside the data.
//
// Every key is checked before anything is written, so a malformed key leaves
// no data directory behind. The data directory is created only to hold a
// generated key, and a key is never generated beside a directory that holds
// data already (a key made now could not open it). A key file must be a
// regular file of at most 1 KiB that neither group nor others may access,
// as OpenSSH demands of a private key. Errors name the setting, never its
// value or a path.
func LoadKeyring(cfg KeyConfig) (*Keyring, KeySource, error) {
	var old []string
	if strings.TrimSpace(cfg.OldKeys) != "" {
		for i, s := range strings.Split(cfg.OldKeys, ",") {
			s = strings.TrimSpace(s)
			if _, err := parseKey(s); err != nil {
				return nil, "", fmt.Errorf("PROJECT_FILES_OLD_KEYS: key %d is not a Fernet key (32 bytes, base64url)", i+1)
			}
			old = append(old, s)
		}
	}
	var primary string
	var src KeySource
	switch {
	case cfg.File != "":
		k, err := readKeyFile(cfg.File, settingKeyFile)
		if err != nil {
			return nil, "", err
		}
		primary, src = k, KeyFromFile
	case cfg.Env != "":
		primary, src = strings.TrimSpace(cfg.Env), KeyFromEnv
		if _, err := parseKey(primary); err != nil {
			return nil, "", errors.New("PROJECT_FILES_KEY is not a Fernet key (32 bytes, base64url)")
		}
	default:
		k, err := loadOrGenerate(cfg.DataDir, cfg.NoGenerate)
		if err != nil {
			return nil, "", err
		}
		primary, src = k, KeyFromDataDir
	}
	kr, err := NewKeyring(append([]string{primary}, old...)...)
	return kr, src, err
}

// loadOrGenerate returns the key in <dataDir>/files.key, generating it when
// it is missing, generate is allowed, and the directory holds no data.
func loadOrGenerate(dataDir string, noGenerate bool) (string, error) {
	path := filepath.Join(dataDir, keyFileName)
	k, err := readKeyFile(path, settingGenerated)
	if !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	if noGenerate {
		return "", errors.New("no newsroom key: give --key-file or PROJECT_FILES_KEY, as the server gets it")
	}
	has, err := holdsData(dataDir)
	if err != nil {
		return "", err
	}
	if has {
		return "", errors.New("no newsroom key, and the data directory holds data already: " +
			"a key generated now could not read it. Give the key it was written with: --key-file (TYST_KEY_FILE) or PROJECT_FILES_KEY")
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", fmt.Errorf("%s cannot be created: %w", settingDataDir, stripPaths(err))
	}
	k, err = CreateKeyFile(path)
	if errors.Is(err, ErrKeyFileExists) { // another process generated it just now
		return readKeyFile(path, settingGenerated)
	}
	if err != nil {
		return "", fmt.Errorf("%s cannot be written: %w", settingGenerated, err)
	}
	return k, nil
}

// holdsData reports whether dataDir holds tyst data: a non-empty database
// or a blob. A directory that does not exist holds none.
func holdsData(dataDir string) (bool, error) {
	st, err := os.Stat(filepath.Join(dataDir, dbFileName))
	switch {
	case err == nil:
		if st.Size() > 0 {
			return true, nil
		}
	case !errors.Is(err, fs.ErrNotExist):
		return false, fmt.Errorf("%s cannot be read: %w", settingDataDir, stripPaths(err))
	}
	shards, err := os.ReadDir(filepath.Join(dataDir, "blobs"))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%s cannot be read: %w", settingDataDir, stripPaths(err))
	}
	for _, s := range shards {
		if !s.IsDir() || s.Name() == "tmp" {
			continue
		}
		d, err := os.Open(filepath.Join(dataDir, "blobs", s.Name()))
		if err != nil {
			return false, fmt.Errorf("%s cannot be read: %w", settingDataDir, stripPaths(err))
		}
		names, err := d.Readdirnames(1)
		d.Close()
		if len(names) > 0 {
			return true, nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return false, fmt.Errorf("%s cannot be read: %w", settingDataDir, stripPaths(err))
		}
	}
	return false, nil
}

// readKeyFile reads the key in the file at path; setting names the file in
// errors. A missing file's error matches fs.ErrNotExist.
func readKeyFile(path, setting string) (string, error) {
	// O_NONBLOCK: opening a FIFO must not wait for a writer; the type
	// check below then refuses it. Regular files ignore the flag.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return "", fmt.Errorf("%s cannot be read: %w", setting, stripPaths(err))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("%s cannot be read: %w", setting, stripPaths(err))
	}
	switch {
	case !st.Mode().IsRegular():
		return "", fmt.Errorf("%s is not a regular file: a key file holds only the key (one line, 44 characters)", setting)
	case st.Mode().Perm()&0o077 != 0:
		return "", fmt.Errorf("%s is open to group or others (mode %04o): a key must be private. Run chmod 600 on it",
			setting, st.Mode().Perm())
	case st.Size() > maxKeyFileBytes:
		return "", fmt.Errorf("%s is too large to hold a key (%d bytes, a key is 44 characters)", setting, st.Size())
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFileBytes+1))
	if err != nil {
		return "", fmt.Errorf("%s cannot be read: %w", setting, stripPaths(err))
	}
	if len(b) > maxKeyFileBytes {
		return "", fmt.Errorf("%s is too large to hold a key (a key is 44 characters)", setting)
	}
	k := strings.TrimSpace(string(b))
	if _, err := parseKey(k); err != nil {
		return "", fmt.Errorf("%s does not hold a Fernet key (32 bytes, base64url)", setting)
	}
	return k, nil
}

// CreateKeyFile generates a new newsroom key into a new file at path with
// mode 0600, synced to disk, and returns the key. It never overwrites: an
// existing path gives ErrKeyFileExists. A half-written file is removed.
// Errors hold no path.
func CreateKeyFile(path string) (string, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return "", ErrKeyFileExists
	}
	if err != nil {
		return "", stripPaths(err)
	}
	k := GenerateKey()
	err = f.Chmod(0o600) // exactly 0600 whatever the umask
	if err == nil {
		_, err = f.WriteString(k + "\n")
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = dirsync.Sync(filepath.Dir(path))
	}
	if err != nil {
		os.Remove(path)
		return "", stripPaths(err)
	}
	return k, nil
}

// KeyID returns the id under which records and reports name key (a
// base64url Fernet key, as PROJECT_FILES_KEY takes it): a short
// fingerprint that does not reveal the key. It fails for a malformed key,
// without echoing it.
func KeyID(key string) (string, error) {
	k, err := parseKey(strings.TrimSpace(key))
	if err != nil {
		return "", errors.New("not a Fernet key (32 bytes, base64url)")
	}
	return keyID(k), nil
}

// GeneratedKeyID returns the id of the generated key in
// <dataDir>/files.key, or "" when there is none. serve uses it to warn
// while that key, which lies beside the data, is no longer the primary key
// but still exists.
func GeneratedKeyID(dataDir string) (string, error) {
	k, err := readKeyFile(filepath.Join(dataDir, keyFileName), settingGenerated)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return KeyID(k)
}
