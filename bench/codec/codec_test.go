package codec

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/goxpc/xpc"
)

func BenchmarkEncode(b *testing.B) {
	for _, c := range Codecs() {
		b.Run(c.Name(), BenchEncode(c))
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, c := range Codecs() {
		b.Run(c.Name(), BenchDecode(c))
	}
}

func BenchmarkEncodeDecode(b *testing.B) {
	for _, c := range Codecs() {
		b.Run(c.Name(), BenchEncodeDecode(c))
	}
}

// TestRoundTrip checks that every codec gives back the typical request
// unchanged, and that encoding again into the reused buffer gives the same
// bytes, so the benchmarks compare equal work.
func TestRoundTrip(t *testing.T) {
	want := TypicalRequest()
	for _, c := range Codecs() {
		t.Run(c.Name(), func(t *testing.T) {
			b, err := c.Encode(want)
			if err != nil {
				t.Fatal(err)
			}
			first := bytes.Clone(b)
			b, err = c.Encode(want)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(first, b) {
				t.Fatalf("second encode differs:\n%x\n%x", first, b)
			}
			var got Request
			if err := c.Decode(b, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(&got, want) {
				t.Errorf("round trip:\ngot  %+v\nwant %+v", got, *want)
			}
		})
	}
}

// TestXPCMatchesObject checks that the struct encodes to the same message
// the root package's object benchmarks use: ten entries with the XPC types
// the field kinds promise (a nested dictionary, not a flattened struct).
func TestXPCMatchesObject(t *testing.T) {
	b, err := NewXPC().Encode(TypicalRequest())
	if err != nil {
		t.Fatal(err)
	}
	obj, err := xpc.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	r := TypicalRequest()
	caller := xpc.NewDictionary(3)
	caller.Set("pid", xpc.Int64(r.Caller.PID))
	caller.Set("uid", xpc.Int64(r.Caller.UID))
	caller.Set("name", xpc.String(r.Caller.Name))
	want := xpc.NewDictionary(10)
	want.Set("method", xpc.String(r.Method))
	want.Set("service", xpc.String(r.Service))
	want.Set("path", xpc.String(r.Path))
	want.Set("id", xpc.Int64(r.ID))
	want.Set("timeout_ms", xpc.Int64(r.TimeoutMS))
	want.Set("priority", xpc.Int64(r.Priority))
	want.Set("seq", xpc.Uint64(r.Seq))
	want.Set("wants_reply", xpc.Bool(r.WantsReply))
	want.Set("payload", xpc.Data(r.Payload))
	want.Set("caller", caller)
	if !xpc.Equal(obj, want) {
		t.Errorf("xpc body decodes to\n%s\nwant\n%s", xpc.Format(obj), xpc.Format(want))
	}
}
