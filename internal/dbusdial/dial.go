package dbusdial

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
)

// DefaultSystemBus is the system bus's address when
// DBUS_SYSTEM_BUS_ADDRESS is not set (the D-Bus specification's).
const DefaultSystemBus = "unix:path=/run/dbus/system_bus_socket"

// Timeout bounds Dial when the caller's context has no earlier deadline.
const Timeout = 5 * time.Second

// SystemBus returns the system bus's address: $DBUS_SYSTEM_BUS_ADDRESS, or
// DefaultSystemBus when that is unset or empty.
func SystemBus() string {
	if a := os.Getenv("DBUS_SYSTEM_BUS_ADDRESS"); a != "" {
		return a
	}
	return DefaultSystemBus
}

// Dial connects to the first address of the list (separated by ";") that
// answers, authenticates (EXTERNAL) and says Hello, within ctx and
// Timeout. The connection it returns is the caller's to close.
func Dial(ctx context.Context, addresses string) (*dbus.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	var errs []error
	for _, address := range strings.Split(addresses, ";") {
		if address == "" {
			continue
		}
		name, err := unixSocketName(address)
		if err == nil {
			var conn *dbus.Conn
			if conn, err = dialUnix(ctx, name); err == nil {
				return conn, nil
			}
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil, errors.New("empty address")
	}
	return nil, errors.Join(errs...)
}

// unixSocketName reads a "unix:path=P" or "unix:abstract=N" address: P, or
// "@N".
func unixSocketName(address string) (string, error) {
	params, ok := strings.CutPrefix(address, "unix:")
	if !ok {
		return "", fmt.Errorf("%.64q: only unix: addresses are supported", address)
	}
	for kv := range strings.SplitSeq(params, ",") {
		key, value, _ := strings.Cut(kv, "=")
		v, err := url.PathUnescape(value)
		if err != nil {
			return "", fmt.Errorf("%.64q: %w", address, err)
		}
		switch key {
		case "path":
			return v, nil
		case "abstract":
			return "@" + v, nil
		}
	}
	return "", fmt.Errorf("%.64q: no path= or abstract=", address)
}

// dialUnix connects to the bus's socket name, with ctx's deadline on the
// connection until Hello has been answered.
func dialUnix(ctx context.Context, name string) (*dbus.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", name)
	if err != nil {
		return nil, err
	}
	deadline, _ := ctx.Deadline()
	if err := c.SetDeadline(deadline); err != nil {
		c.Close()
		return nil, err
	}
	// A cancelled ctx ends the dial at once, as its deadline would.
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	conn, err := dbus.NewConn(c)
	if err != nil {
		stop()
		c.Close()
		return nil, err
	}
	if err := conn.Auth(nil); err != nil {
		stop()
		conn.Close()
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	if err := conn.Hello(); err != nil {
		stop()
		conn.Close()
		return nil, fmt.Errorf("hello: %w", err)
	}
	if !stop() {
		conn.Close()
		return nil, ctx.Err()
	}
	if err := c.SetDeadline(time.Time{}); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}
