package xpc

import (
	"os"
	"path/filepath"
	"testing"
)

// benchTypicalDict returns the object form of the typical request that
// bench/codec compares across codecs: ten entries, among them strings,
// int64s, a uint64, a bool, 64 bytes of data and a nested dictionary of
// three entries. Keep the two in step.
func benchTypicalDict() *Dictionary {
	payload := make(Data, 64)
	for i := range payload {
		payload[i] = byte(i)
	}
	caller := NewDictionary(3)
	caller.Set("pid", Int64(4242))
	caller.Set("uid", Int64(501))
	caller.Set("name", String("com.example.client"))

	d := NewDictionary(10)
	d.Set("method", String("Launch"))
	d.Set("service", String("com.example.agent"))
	d.Set("path", String("/org/example/Agent/1"))
	d.Set("id", Int64(123456789))
	d.Set("timeout_ms", Int64(30000))
	d.Set("priority", Int64(-5))
	d.Set("seq", Uint64(1<<40+7))
	d.Set("wants_reply", Bool(true))
	d.Set("payload", payload)
	d.Set("caller", caller)
	return d
}

// benchVectorBody reads the 1076-byte capture of testdata/vectors and
// returns its body.
func benchVectorBody(b *testing.B) []byte {
	b.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "vectors", "go-ios_xpc_dict.bin"))
	if err != nil {
		b.Fatal(err)
	}
	_, body, err := ParseWrapper(raw)
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// TestEncodeAllocs checks that an Encoder reused across calls encodes an
// object without allocating once its buffer has grown.
func TestEncodeAllocs(t *testing.T) {
	d := benchTypicalDict()
	var e Encoder
	var err error
	allocs := testing.AllocsPerRun(100, func() {
		_, err = e.Encode(d)
	})
	if err != nil {
		t.Fatal(err)
	}
	if allocs != 0 {
		t.Errorf("Encoder.Encode of the typical request: %v allocs/op, want 0", allocs)
	}
}

func BenchmarkEncodeTypical(b *testing.B) {
	d := benchTypicalDict()
	var e Encoder
	body, err := e.Encode(d)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Encode(d); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeTypical(b *testing.B) {
	body, err := Encode(benchTypicalDict())
	if err != nil {
		b.Fatal(err)
	}
	var dec Decoder
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := dec.Decode(body, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeVector(b *testing.B) {
	body := benchVectorBody(b)
	var dec Decoder
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := dec.Decode(body, nil); err != nil {
			b.Fatal(err)
		}
	}
}
