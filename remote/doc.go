// Package remote reads checkpoints where they live: S3 and S3-compatible
// object stores (s3://bucket/key), any HTTP server that honours Range
// requests (https://, http://) and the Hugging Face Hub (hf://org/repo[@rev]/path).
// Each is a formats.FS registered for its URL scheme, so every reader in
// formats reads a remote checkpoint with the same code as a local one:
// headers with small range requests, tensor data with parallel range requests,
// retried with backoff, and an object that changes while it is read reported
// as the same finding as a local file replaced mid-scan.
package remote
