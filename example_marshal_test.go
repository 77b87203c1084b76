package xpc_test

import (
	"fmt"
	"log"
	"time"

	"github.com/goxpc/xpc"
)

// LaunchRequest is a message as a Go struct: each field is a dictionary key.
type LaunchRequest struct {
	Service string            `xpc:"service"`
	Args    []string          `xpc:"args,omitempty"`
	Env     map[string]string `xpc:"env,omitempty"`
	Timeout time.Duration     `xpc:"timeout_ns"`
	Reply   bool              `xpc:"wants_reply"`
	Session *xpc.UUID         `xpc:"session,omitempty"`
}

func ExampleMarshal() {
	req := LaunchRequest{
		Service: "com.example.agent",
		Args:    []string{"--verbose"},
		Timeout: 5 * time.Second,
		Reply:   true,
	}
	body, err := xpc.Marshal(&req)
	if err != nil {
		log.Fatal(err)
	}
	// The body is an ordinary XPC dictionary.
	obj, err := xpc.Decode(body)
	if err != nil {
		log.Fatal(err)
	}
	d := obj.(*xpc.Dictionary)
	fmt.Println(d.Keys())
	timeout, _ := d.Int64("timeout_ns")
	fmt.Println(timeout)
	// Output:
	// [service args timeout_ns wants_reply]
	// 5000000000
}

func ExampleUnmarshal() {
	// A message built as objects, with a key the struct does not know.
	body, err := xpc.Encode(xpc.Dict(
		"service", "com.example.agent",
		"env", map[string]string{"LANG": "C"},
		"timeout_ns", xpc.Int64(2e9),
		"wants_reply", true,
		"future_key", "ignored",
	))
	if err != nil {
		log.Fatal(err)
	}
	var req LaunchRequest
	if err := xpc.Unmarshal(body, &req); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s %v %v %v\n", req.Service, req.Env, req.Timeout, req.Reply)
	// Output:
	// com.example.agent map[LANG:C] 2s true
}

func ExampleUnmarshal_errors() {
	body, _ := xpc.Encode(xpc.Dict("ports", xpc.Array{xpc.Int64(80), xpc.Int64(70000)}))
	var cfg struct {
		Ports []uint16 `xpc:"ports"`
	}
	err := xpc.Unmarshal(body, &cfg)
	fmt.Println(err)
	// Output:
	// xpc: ports[1]: value does not fit the Go type: 70000 does not fit in uint16
}

func ExampleEncoder_EncodeValue() {
	type ping struct {
		Seq  uint64 `xpc:"seq"`
		Note string `xpc:"note"`
	}
	var enc xpc.Encoder // reuse it: encoding then does not allocate
	for i := range 3 {
		body, err := enc.EncodeValue(&ping{Seq: uint64(i), Note: "hello"})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(len(body), len(enc.Attachments()))
	}
	// Output:
	// 60 0
	// 60 0
	// 60 0
}

func ExampleObjectInto() {
	// A received dictionary, taken apart into a struct.
	msg := xpc.Dict("service", "com.example.agent", "wants_reply", true)
	var req LaunchRequest
	if err := xpc.ObjectInto(msg, &req); err != nil {
		log.Fatal(err)
	}
	fmt.Println(req.Service, req.Reply)
	// Output:
	// com.example.agent true
}
