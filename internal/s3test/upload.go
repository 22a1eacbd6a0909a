package s3test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// multipartSize is the file size from which Upload sends a file in parts of
// that size (a multipart upload, whose ETag is not the object's MD5).
const multipartSize = 64 << 20

// Put stores data as key in the test's bucket with one PUT.
func (s Server) Put(tb testing.TB, key string, data []byte) {
	tb.Helper()
	s.bucketSet(tb)
	_, err := s.Client().PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(s.Bucket), Key: aws.String(key), Body: bytes.NewReader(data),
	})
	if err != nil {
		tb.Fatalf("PUT %s: %v", s.URL(key), err)
	}
}

// Upload stores every regular file under the local directory dir as
// prefix/RELATIVE/PATH in the test's bucket (prefix "" puts them at the
// bucket's root) and returns the s3:// URL of the uploaded tree. Files of 64
// MiB or more go up as multipart uploads of 64 MiB parts.
func (s Server) Upload(tb testing.TB, dir, prefix string) string {
	tb.Helper()
	return s.upload(tb, dir, prefix, multipartSize)
}

// upload is Upload with parts of partSize bytes.
func (s Server) upload(tb testing.TB, dir, prefix string, partSize int64) string {
	tb.Helper()
	s.bucketSet(tb)
	c := s.Client()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		key := path.Join(prefix, filepath.ToSlash(rel))
		if err := s.uploadFile(c, p, key, partSize); err != nil {
			return fmt.Errorf("uploading %s to %s: %w", p, s.URL(key), err)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return s.URL(prefix)
}

func (s Server) bucketSet(tb testing.TB) {
	tb.Helper()
	if s.Bucket == "" {
		tb.Fatal("s3test: no bucket (use the Server that S3 returns)")
	}
}

func (s Server) uploadFile(c *s3.Client, name, key string, partSize int64) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	ctx := context.Background()
	if st.Size() < partSize {
		// An *os.File is seekable: the SDK signs its SHA-256 and sends its length.
		_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(key), Body: f})
		return err
	}
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(s.Bucket), Key: aws.String(key)})
	if err != nil {
		return err
	}
	var parts []types.CompletedPart
	for off, n := int64(0), int32(1); off < st.Size(); off, n = off+partSize, n+1 {
		part, err := c.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: aws.String(s.Bucket), Key: aws.String(key), UploadId: up.UploadId,
			PartNumber: aws.Int32(n), Body: io.NewSectionReader(f, off, min(partSize, st.Size()-off)),
		})
		if err != nil {
			c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(s.Bucket), Key: aws.String(key), UploadId: up.UploadId})
			return err
		}
		parts = append(parts, types.CompletedPart{ETag: part.ETag, PartNumber: aws.Int32(n)})
	}
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(s.Bucket), Key: aws.String(key), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	return err
}
