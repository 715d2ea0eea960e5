package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

const (
	liveToneHz  = 1000.0
	liveRate    = 48000
	liveSeconds = 8.0 // recorded time asked for, before stop
)

// TestLiveRecording records from Chromium's fake microphone (fed a 1 kHz
// WAV) through the AudioWorklet and the stream WebSocket, drops the socket
// in the middle, and checks that the stored WAV lasts as long as the
// recording, holds a continuous 1 kHz tone (nothing lost or doubled at the
// drops), and was declared at the audio context's own rate. The second
// drop is a server restart.
func TestLiveRecording(t *testing.T) {
	srv, b, s := liveSetup(t)
	id := createRecordAPI(t, s.api, "Live canary 3e77")

	b.do("open the record", chromedp.Navigate(srv.base+"/#/record/"+id))
	b.waitJS("the record button", `document.querySelector('#rec-start')`, 10*time.Second)
	// The rate the page must declare: the microphone's own (asked for as
	// the page asks: no echo cancellation, noise suppression or gain
	// control), else the audio context's default.
	rate := eval[float64](b, `(async () => {
		const m = await navigator.mediaDevices.getUserMedia({audio: {echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: 1}});
		let r = m.getAudioTracks()[0].getSettings().sampleRate;
		m.getTracks().forEach(t => t.stop());
		if (!r) { const c = new AudioContext(); r = c.sampleRate; await c.close(); }
		return r;
	})()`)
	// Watch the states the page shows.
	watchStates(b)
	b.click("#rec-start")
	b.waitJS("recording", `document.querySelector('#live').dataset.state === 'recording'`, 15*time.Second)
	b.waitJS("two seconds recorded", `document.querySelector('#rec-time').textContent >= '0:02'`, 10*time.Second)
	if lvl := eval[float64](b, `document.querySelector('#rec-level').value`); lvl < 0.3 {
		t.Errorf("level meter shows %.2f for a tone of amplitude 0.6", lvl)
	}
	b.screen("25-live-recording")

	// Drop the connection from the page; it resumes from the server's offset.
	eval[chromedp.Void](b, `document.dispatchEvent(new Event('tyst:test-drop'))`)
	b.waitJS("reconnecting", `window.recStates.includes('reconnecting')`, 5*time.Second)
	b.waitJS("recording again", `window.recStates.lastIndexOf('recording') > window.recStates.indexOf('reconnecting')`, 15*time.Second)
	b.waitJS("four seconds recorded", `document.querySelector('#rec-time').textContent >= '0:04'`, 10*time.Second)

	// A real drop: the server restarts. The page keeps recording into
	// memory, reconnects with backoff and resumes.
	srv.restart(t)
	b.waitJS("reconnecting after the restart", `window.recStates.filter(s => s === 'reconnecting').length >= 2`, 10*time.Second)
	b.waitJS("recording after the restart", `window.recStates.lastIndexOf('recording') > window.recStates.lastIndexOf('reconnecting')`, 20*time.Second)
	b.waitJS(fmt.Sprintf("%v s recorded", liveSeconds), fmt.Sprintf(`document.querySelector('#rec-time').textContent >= '0:%02d'`, int(liveSeconds)), 15*time.Second)
	b.click("#rec-stop")
	b.waitJS("the stored recording", `document.querySelector('#player')`, 30*time.Second)
	shown := b.flash()

	secs, f := checkLiveAudio(t, s.api, id, int(rate), liveSeconds)
	if !strings.Contains(shown, "Recording stored") {
		t.Errorf("the page said %q after stop", shown)
	}
	states := eval[[]string](b, `window.recStates`)
	t.Logf("context rate %v Hz, stored %.2f s, %.0f Hz, states %v", rate, secs, f, states)
	b.screen("26-live-stored")
	b.checkClean()
}

// checkLiveAudio fetches record id's stored audio and checks that it is a
// mono 16-bit WAV at rate lasting minSecs to minSecs+2 s, with duration_ms to
// match, holding a continuous tone of liveToneHz: nothing lost or doubled.
// It returns the seconds stored and the dominant frequency.
func checkLiveAudio(t *testing.T, api *apiClient, id string, rate int, minSecs float64) (secs, f float64) {
	t.Helper()
	var rec struct {
		Audio struct {
			MIMEType   string `json:"mime_type"`
			DurationMS int64  `json:"duration_ms"`
			SizeBytes  int64  `json:"size_bytes"`
		} `json:"audio"`
	}
	api.getJSON("/api/v1/record/"+id, &rec)
	status, body := api.call("GET", "/api/v1/record/"+id+"/audio", nil)
	if status != 200 {
		t.Fatalf("GET audio: %d", status)
	}
	w, err := parseWAV(body)
	if err != nil {
		t.Fatalf("stored audio is not a WAV: %v", err)
	}
	if w.rate != rate || w.channels != 1 || w.bits != 16 {
		t.Fatalf("stored WAV %d Hz, %d channels, %d bits; want the microphone's %v Hz, mono, 16 bits", w.rate, w.channels, w.bits, rate)
	}
	samples := w.samples()
	secs = float64(len(samples)) / float64(w.rate)
	if secs < minSecs || secs > minSecs+2 {
		t.Errorf("stored %.2f s, want about %v s", secs, minSecs)
	}
	if d := math.Abs(float64(rec.Audio.DurationMS) - secs*1000); d > 50 {
		t.Errorf("duration_ms %d, WAV holds %.0f ms", rec.Audio.DurationMS, secs*1000)
	}
	f, share := dominantFrequency(samples, w.rate, 100, 4000)
	if math.Abs(f-liveToneHz) > 10 || share < 0.5 {
		t.Errorf("dominant frequency %.0f Hz (%.0f%% of the energy), want %v Hz", f, share*100, liveToneHz)
	}
	if r := rms(samples[w.rate/2 : len(samples)-w.rate/4]); r < 0.3 {
		t.Errorf("RMS %.2f: the recording has silent stretches (a tone of amplitude 0.6 has 0.42)", r)
	}
	// A continuous sine satisfies s[n+1] = 2cos(ω)s[n] - s[n-1]; a lost or
	// doubled stretch at the drop breaks the phase and shows as a spike.
	// Chromium's capture, starved of CPU on a busy machine, pauses: it
	// renders a run of exact zeros (10 ms here) and goes on with the tone
	// where it was. Such a run is not the tone lost or doubled (that breaks
	// the phase between samples of the tone), so its edges are not
	// checked; runs of three or more zeros mark it (a 1 kHz tone of
	// amplitude 0.6 never has two), and they may take 1 % of the audio.
	silent := make([]bool, len(samples))
	underruns, silence := 0, 0
	for i := 0; i < len(samples); {
		j := i
		for j < len(samples) && samples[j] == 0 {
			j++
		}
		if j-i >= 3 {
			underruns, silence = underruns+1, silence+j-i
			for k := max(i-1, 0); k <= min(j, len(samples)-1); k++ {
				silent[k] = true
			}
		}
		i = j + 1
	}
	if silence > len(samples)/100 {
		t.Errorf("%d runs of silence, %d samples in all: more than 1 %% of the recording", underruns, silence)
	}
	c := 2 * math.Cos(2*math.Pi*liveToneHz/float64(w.rate))
	worst, at := 0.0, 0
	for n := w.rate / 10; n+1 < len(samples)-w.rate/10; n++ {
		if silent[n-1] || silent[n] || silent[n+1] {
			continue
		}
		if d := math.Abs(samples[n+1] - c*samples[n] + samples[n-1]); d > worst {
			worst, at = d, n
		}
	}
	if worst > 0.05 {
		t.Errorf("the tone breaks at %.3f s (residual %.3f): audio lost or doubled", float64(at)/float64(w.rate), worst)
	}
	if underruns > 0 {
		t.Logf("the capture paused %d times (%d samples of silence)", underruns, silence)
	}
	return secs, f
}

// liveSetup starts a server (with env), a Chromium whose fake microphone
// plays a 1 kHz tone, and an admin logged in there with an API client.
func liveSetup(t *testing.T, env ...string) (*server, *browser, *session) {
	t.Helper()
	needBrowser(t)
	srv := startServer(t, env...)
	wav := filepath.Join(t.TempDir(), "mic.wav")
	writeToneWAV(t, wav, liveRate, liveToneHz, 10)
	b := startBrowser(t, srv, browserOptions{fakeAudio: wav})
	s := setupAdmin(t, srv, b, false)
	s.api = browserAPI(t, b, srv)
	return srv, b, s
}

// openLive opens record id's page, ready to record, with watchStates on,
// and returns the rate the page's audio context runs at.
func openLive(b *browser, srv *server, id string) float64 {
	b.t.Helper()
	b.do("open the record", chromedp.Navigate(srv.base+"/#/record/"+id))
	b.waitJS("the record button", `document.querySelector('#rec-start')`, 10*time.Second)
	rate := eval[float64](b, `(async () => { const c = new AudioContext(); const r = c.sampleRate; await c.close(); return r; })()`)
	watchStates(b)
	return rate
}

// finishLive records until liveSeconds, stops, waits for the stored
// recording and checks its audio (checkLiveAudio); it returns the seconds
// stored.
func finishLive(t *testing.T, b *browser, api *apiClient, id string, rate float64) float64 {
	t.Helper()
	b.waitJS(fmt.Sprintf("%v s recorded", liveSeconds), fmt.Sprintf(`document.querySelector('#rec-time').textContent >= '0:%02d'`, int(liveSeconds)), 15*time.Second)
	b.click("#rec-stop")
	b.waitJS("the stored recording", `document.querySelector('#player')`, 30*time.Second)
	secs, _ := checkLiveAudio(t, api, id, int(rate), liveSeconds)
	return secs
}

// watchStates records in window.recStates every state the live box
// shows, in order, once each time it changes.
func watchStates(b *browser) {
	eval[chromedp.Void](b, `(() => { window.recStates = []; const box = document.querySelector('#live');
		new MutationObserver(() => { const s = box.dataset.state; if (s && window.recStates[window.recStates.length - 1] !== s) window.recStates.push(s); })
		.observe(box, {attributes: true, attributeFilter: ['data-state']}); })()`)
}

// createRecordAPI creates a record through the API and returns its id.
func createRecordAPI(t *testing.T, c *apiClient, title string) string {
	t.Helper()
	status, body := c.call("POST", "/api/v1/record", map[string]any{"title": title})
	if status != 201 {
		t.Fatalf("create record: %d %s", status, body)
	}
	var r struct {
		ID uint64 `json:"transcript_id"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(r.ID)
}

// TestLiveRecordingWaitsForSlot: an account allowed one live stream
// (TYST_MAX_STREAMS_PER_USER=1) holds it in another tab; a recording
// started here is refused a stream, says why and that it goes on, keeps
// capturing, and once the other stream is stored gets its slot and sends
// everything: the stored audio covers the wait too, without a gap.
func TestLiveRecordingWaitsForSlot(t *testing.T) {
	srv, b, s := liveSetup(t, "TYST_MAX_STREAMS_PER_USER=1")
	other := createRecordAPI(t, s.api, "Other tab")
	id := createRecordAPI(t, s.api, "Waiting canary 51c0")

	// The other tab's stream, opened from this page with the same session.
	eval[chromedp.Void](b, fmt.Sprintf(`(() => {
		const ws = new WebSocket((location.protocol === 'https:' ? 'wss:' : 'ws:') + '//' + location.host + '/api/v1/record/%s/stream');
		window.otherTab = { ws, msgs: [] };
		ws.onmessage = (e) => window.otherTab.msgs.push(JSON.parse(e.data));
		ws.onopen = () => ws.send(JSON.stringify({type: 'start', format: 'pcm_s16le', sample_rate: 16000, channels: 1, source: 'other-tab'}));
	})()`, other))
	defer func() {
		if t.Failed() {
			t.Logf("other tab: %s", eval[string](b, `JSON.stringify([window.otherTab.ws.readyState, window.otherTab.msgs])`))
		}
	}()
	b.waitJS("the other tab's stream", `window.otherTab.msgs.some(m => m.type === 'ready')`, 10*time.Second)

	rate := openLive(b, srv, id)
	b.click("#rec-start")
	b.waitJS("waiting for a slot", `document.querySelector('#live').dataset.state === 'waiting'`, 15*time.Second)
	if w := b.text("#rec-error"); !strings.Contains(w, "as many live recordings as it may") || !strings.Contains(w, "sent as soon as") {
		t.Errorf("the page says %q while it waits", w)
	}
	// It keeps waiting (and counting the time) past several refusals,
	// rather than giving up as it does when the server cannot be reached.
	b.waitJS("five seconds captured while waiting", `document.querySelector('#rec-time').textContent >= '0:05'`, 15*time.Second)
	if st := eval[string](b, `document.querySelector('#live').dataset.state`); st != "waiting" {
		t.Fatalf("state %q after five seconds of waiting, want waiting", st)
	}
	b.screen("33-live-waiting")

	// The other tab stops: its stream is stored and the slot frees.
	eval[chromedp.Void](b, `(() => { const ws = window.otherTab.ws; ws.send(new Uint8Array(3200)); ws.send(JSON.stringify({type: 'stop'})); })()`)
	b.waitJS("the other tab's stream stored", `window.otherTab.msgs.some(m => m.type === 'stored')`, 15*time.Second)
	b.waitJS("recording once the slot is free", `document.querySelector('#live').dataset.state === 'recording'`, 15*time.Second)
	if w := b.text("#rec-error"); w != "" {
		t.Errorf("the waiting notice stays once recording: %q", w)
	}
	secs := finishLive(t, b, s.api, id, rate)
	states := eval[[]string](b, `window.recStates`)
	if len(states) == 0 || states[0] == "failed" || !strings.Contains(strings.Join(states, " "), "waiting recording") {
		t.Errorf("states %v, want waiting then recording", states)
	}
	t.Logf("stored %.2f s, states %v", secs, states)
	b.checkClean()
}

// TestLiveRecordingOutlivesLogout: the login ends while the page records
// (a logout in another tab, its 12 hours, an admin's reset). The server
// ends the stream at once; the page says so, keeps capturing and holds
// the audio, and once the user logs in again in this browser the
// recording goes on where it stopped: the stored audio covers the
// signed-out time too, without a gap.
func TestLiveRecordingOutlivesLogout(t *testing.T) {
	srv, b, s := liveSetup(t)
	id := createRecordAPI(t, s.api, "Signed out canary 7e2a")
	rate := openLive(b, srv, id)
	b.click("#rec-start")
	b.waitJS("recording", `document.querySelector('#live').dataset.state === 'recording'`, 15*time.Second)
	b.waitJS("two seconds recorded", `document.querySelector('#rec-time').textContent >= '0:02'`, 15*time.Second)

	// Another tab of this browser logs out.
	if st := eval[float64](b, `fetch('/api/v1/session', {method: 'DELETE', credentials: 'same-origin'}).then(r => r.status)`); st != 204 {
		t.Fatalf("logout: %v", st)
	}
	b.waitJS("the page waits for a login", `document.querySelector('#live').dataset.state === 'waiting'`, 10*time.Second)
	if w := b.text("#rec-error"); !strings.Contains(w, "login has ended") || !strings.Contains(w, "log in again") {
		t.Errorf("the page says %q while signed out", w)
	}
	b.waitJS("capturing on while signed out", `document.querySelector('#rec-time').textContent >= '0:05'`, 15*time.Second)
	if st := eval[string](b, `document.querySelector('#live').dataset.state`); st != "waiting" {
		t.Fatalf("state %q while signed out, want waiting", st)
	}

	// The user logs in again in another tab of this browser.
	login := fmt.Sprintf(`fetch('/api/v1/session', {method: 'POST', credentials: 'same-origin', headers: {'Content-Type': 'application/json'},
		body: JSON.stringify({username: 'admin', password: %q, totp: %q})}).then(r => r.status)`, adminPassword, s.recovery[0])
	if st := eval[float64](b, login); st != 200 {
		t.Fatalf("login again: %v", st)
	}
	b.waitJS("recording again", `document.querySelector('#live').dataset.state === 'recording'`, 15*time.Second)
	if w := b.text("#rec-error"); w != "" {
		t.Errorf("the signed-out notice stays once recording: %q", w)
	}
	secs := finishLive(t, b, browserAPI(t, b, srv), id, rate) // the new login's cookie
	states := eval[[]string](b, `window.recStates`)
	if !strings.Contains(strings.Join(states, " "), "recording waiting") || slices.Contains(states, "failed") {
		t.Errorf("states %v, want recording, waiting, then recording again", states)
	}
	t.Logf("stored %.2f s, states %v", secs, states)
	b.checkClean()
}

// TestLiveRecordingDestroyed: a record destroyed while the page records
// into it ends the recording for good: the page says the record was
// destroyed and nothing stored, stops the microphone, and neither
// reconnects nor sends the audio anywhere.
func TestLiveRecordingDestroyed(t *testing.T) {
	srv, b, s := liveSetup(t)
	id := createRecordAPI(t, s.api, "Destroyed canary 9d41")

	b.do("open the record", chromedp.Navigate(srv.base+"/#/record/"+id))
	b.waitJS("the record button", `document.querySelector('#rec-start')`, 10*time.Second)
	watchStates(b)
	b.click("#rec-start")
	b.waitJS("recording", `document.querySelector('#live').dataset.state === 'recording'`, 15*time.Second)
	b.waitJS("two seconds recorded", `document.querySelector('#rec-time').textContent >= '0:02'`, 10*time.Second)

	if code, body := s.api.call("POST", "/api/v1/record/"+id+"/destroy", map[string]any{"dry_run": false, "confirm": true, "reason": "the source asked"}); code != 200 {
		t.Fatalf("destroy: %d %s", code, body)
	}
	b.waitJS("the page says the record was destroyed", `document.querySelector('#rec-error').textContent.includes('destroyed')`, 10*time.Second)
	shown := b.text("#rec-error")
	if !strings.Contains(shown, "stored none of it") {
		t.Errorf("the page says %q", shown)
	}
	time.Sleep(2 * time.Second) // a retry would show by now
	states := eval[[]string](b, `window.recStates`)
	if strings.Contains(strings.Join(states, " "), "reconnecting") {
		t.Errorf("states %v: the page tried again after the destroy", states)
	}
	if live := eval[bool](b, `document.querySelector('#rec-stop') === null || document.querySelector('#rec-stop').hidden`); !live {
		t.Error("the stop button is still offered")
	}
	if code, _ := s.api.call("GET", "/api/v1/record/"+id, nil); code != 404 {
		t.Errorf("record after the destroy: %d", code)
	}
	t.Logf("states %v, shown %q", states, shown)
	b.checkClean()
}
