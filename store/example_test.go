package store_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	"tyst/store"
)

// Example shows the store's main calls: open a data directory, create a
// record, attach its audio and read it back.
func Example() {
	dir, _ := os.MkdirTemp("", "tyst-example")
	defer os.RemoveAll(dir)
	keys, _ := store.NewKeyring(store.GenerateKey())
	db, err := store.Open(dir, store.Options{Keys: keys})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	ctx := context.Background()

	rec, _ := db.CreateRecord(ctx, store.NewRecord{Title: "Interview", Language: "en"})
	wav, _ := os.ReadFile("../testdata/audio/tone.wav")
	audio, _ := db.AttachAudio(ctx, rec.ID, store.NewAudio{DeclaredType: "audio/x-wav", Body: bytes.NewReader(wav)})
	fmt.Println(audio.MIMEType, audio.SizeBytes, audio.DurationMS)

	ar, _ := db.OpenAudio(ctx, rec.ID)
	defer ar.Close()
	back, _ := io.ReadAll(ar)
	fmt.Println(bytes.Equal(back, wav))

	_, err = db.AttachAudio(ctx, rec.ID, store.NewAudio{Body: bytes.NewReader(wav)})
	fmt.Println(store.ErrorCode(err))
	// Output:
	// audio/wav 32044 1000
	// true
	// conflict
}
