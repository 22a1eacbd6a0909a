package remote

import (
	"github.com/ckpt-tool/ckpt/formats"
)

// Register makes formats read s3://, http://, https:// and hf:// paths. Each
// store makes its client on first use, reading the environment then (the AWS
// configuration, HF_TOKEN, HF_ENDPOINT), so registering costs nothing for a
// command that reads only local files. Calling it again replaces the stores
// with fresh ones, which read the environment anew.
func Register() {
	o := defaultOptions()
	formats.RegisterFS("s3", newStore("s3", newS3Backend, o))
	web := newStore("http", func() (backend, error) { return newHTTPBackend(), nil }, o)
	formats.RegisterFS("http", web)
	formats.RegisterFS("https", web)
	formats.RegisterFS("hf", newStore("hf", func() (backend, error) { return newHFBackend(), nil }, o))
}
