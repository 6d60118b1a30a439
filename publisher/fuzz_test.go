package publisher_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/betasync/betasync/internal/natstest"
	"github.com/betasync/betasync/internal/testbed"
)

// FuzzCommandPayloads sends arbitrary payloads to every command subject of
// a real service and checks the answer: always JSON, and either a success
// or a client error (400, 404 or 422) naming what is wrong; never a crash,
// never an internal error, never silence. (`make fuzz` runs it longer.)
func FuzzCommandPayloads(f *testing.F) {
	for _, seed := range []string{
		``, `{}`, `null`, `[]`, `{"hours": 24}`, `{"hours": "6"}`, `{"hours": -1}`, `{"hours": "1e400"}`,
		`{"hours": true}`, `{"limit": 5}`, `{"limit": -3}`, `{"version": 1}`, `{"version": "x"}`,
		`{"provider": "bedrock", "beta": "b", "value": null}`, `{"provider": "", "beta": "", "value": "a,b"}`,
		`{"hours": 1, "hours": "x"}`, "{\"hours\": \"\u0000\"}", `{"version": 18446744073709551616}`,
	} {
		for i := range subjects {
			f.Add(i, []byte(seed))
		}
	}
	srv := natstest.Start(f)
	testbed.ServeCommands(f, srv.Connect(f), &testbed.Commands{}, "fuzz")
	nc := srv.Connect(f)

	f.Fuzz(func(t *testing.T, which int, payload []byte) {
		if which < 0 {
			which = -which
		}
		subject := subjects[which%len(subjects)]
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		msg, err := nc.RequestWithContext(ctx, subject, payload)
		if err != nil {
			t.Fatalf("%s %q: no answer: %v", subject, payload, err)
		}
		if !json.Valid(msg.Data) {
			t.Fatalf("%s %q: the answer is not JSON: %q", subject, payload, msg.Data)
		}
		code := msg.Header.Get(micro.ErrorCodeHeader)
		if code == "" {
			return
		}
		status, err := strconv.Atoi(code)
		if err != nil || (status != 400 && status != 404 && status != 422) {
			t.Fatalf("%s %q: error %s %q, want 400, 404 or 422", subject, payload, code, msg.Header.Get(micro.ErrorHeader))
		}
		if msg.Header.Get(micro.ErrorHeader) == "" {
			t.Fatalf("%s %q: error %s without a message", subject, payload, code)
		}
	})
}
