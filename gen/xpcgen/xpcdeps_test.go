package main

// The generated code imports package typed: the module requires the
// library (replaced by the checkout around it) so that the golden tests
// can type-check what they generate.
import _ "github.com/goxpc/xpc/typed"
