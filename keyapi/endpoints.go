package keyapi

import (
	"errors"
	"fmt"
	"strings"
)

const (
	maxEndpoints      = 100
	maxEndpointLength = 512
)

// endpointMethods are the methods an allowlist entry may name.
var endpointMethods = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true,
	"PATCH": true, "DELETE": true, "OPTIONS": true,
}

// parseEndpoint checks one allowlist entry, "METHOD /path", and returns it
// normalised (one space between method and path).
//
// METHOD is an uppercase HTTP method. The path starts with "/", is made of
// RFC 3986 path characters other than "%" (no percent-encoding, query or
// fragment), has no empty, "." or ".." segment (a trailing "/" is allowed),
// and uses "*" only as a whole segment, where it stands for any one segment.
func parseEndpoint(s string) (string, error) {
	if len(s) > maxEndpointLength {
		return "", fmt.Errorf("must be at most %d characters", maxEndpointLength)
	}
	fields := strings.Fields(s)
	if len(fields) != 2 {
		return "", errors.New(`must be "METHOD /path", e.g. "POST /v1/payment_intents"`)
	}
	method, path := fields[0], fields[1]
	if !endpointMethods[method] {
		if endpointMethods[strings.ToUpper(method)] {
			return "", fmt.Errorf("method %q must be uppercase", method)
		}
		return "", fmt.Errorf("method %q is not one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS", method)
	}
	if !strings.HasPrefix(path, "/") {
		return "", fmt.Errorf("path %q must start with /", path)
	}
	segments := strings.Split(path[1:], "/")
	for i, seg := range segments {
		switch {
		case seg == "":
			if i != len(segments)-1 {
				return "", fmt.Errorf("path %q has an empty segment", path)
			}
		case seg == "." || seg == "..":
			return "", fmt.Errorf("path %q has a %q segment", path, seg)
		case strings.Contains(seg, "*") && seg != "*":
			return "", fmt.Errorf("path %q: * must be a whole path segment", path)
		}
		for j := 0; j < len(seg); j++ {
			if !isPathChar(seg[j]) {
				return "", fmt.Errorf("path %q: character %q is not allowed", path, seg[j])
			}
		}
	}
	return method + " " + path, nil
}

// isPathChar reports RFC 3986 pchar characters, without "%", plus "*".
func isPathChar(c byte) bool {
	if isBase62(c) {
		return true
	}
	return strings.IndexByte("-._~!$&'()*+,;=:@", c) >= 0
}
