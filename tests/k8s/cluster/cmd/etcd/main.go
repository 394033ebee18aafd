// SPDX-License-Identifier: MIT

// etcd for the test cluster: the upstream server's entry point, under the
// binary name etcd (the module's own main package would be named "server").
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
