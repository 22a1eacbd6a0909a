package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/ckpt-tool/ckpt/formats"
)

// S3 and S3-compatible stores: s3://bucket/key. The client is the AWS SDK's,
// configured as every AWS tool is (config.LoadDefaultConfig: the environment,
// ~/.aws/config and credentials, AWS_PROFILE, SSO, the instance's role);
// AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_S3) points it at another store, which
// is then addressed path-style (http://host/bucket/key), as S3-compatible
// servers expect. Without credentials it reads public buckets anonymously.
// The SDK's own retries are off: the store retries, with the same rules for
// every backend.

type s3Backend struct {
	client *s3.Client
}

const s3DeniedHint = "check AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or ~/.aws/credentials) and that they may read this bucket"

// newS3Backend loads the AWS configuration.
func newS3Backend() (backend, error) {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, &Error{URL: "s3://", Op: "configure", Err: err, Detail: "the AWS configuration cannot be loaded: " + err.Error()}
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Credentials == nil {
		cfg.Credentials = aws.AnonymousCredentials{}
	} else if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		cfg.Credentials = aws.AnonymousCredentials{}
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if o.BaseEndpoint != nil && *o.BaseEndpoint != "" {
			o.UsePathStyle = true
		}
		o.Retryer = aws.NopRetryer{}
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	return &s3Backend{client: client}, nil
}

// parseS3 splits s3://bucket/key.
func parseS3(u string) (bucket, key string, err error) {
	rest, ok := strings.CutPrefix(u, "s3://")
	if !ok {
		return "", "", &Error{URL: u, Kind: ErrBadURL, Detail: "not an s3:// URL"}
	}
	bucket, key, _ = strings.Cut(rest, "/")
	if bucket == "" {
		return "", "", &Error{URL: u, Kind: ErrBadURL, Detail: "an s3:// URL names a bucket: s3://bucket/key"}
	}
	return bucket, key, nil
}

func (b *s3Backend) check(u string) error {
	_, _, err := parseS3(u)
	return err
}

// s3Error turns an SDK error into an *Error: its HTTP status decides
// (statusError), a failure to get any answer is retryable.
func s3Error(u, op string, err error) *Error {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) && re.HTTPStatusCode() > 0 {
		detail := ""
		var ae smithy.APIError
		if errors.As(err, &ae) && ae.ErrorCode() != "" {
			detail = ae.ErrorCode()
			if m := ae.ErrorMessage(); m != "" {
				detail += ": " + m
			}
		}
		e := statusError(u, op, re.HTTPStatusCode(), s3DeniedHint, detail)
		e.Err = err
		if ae != nil && ae.ErrorCode() == "NoSuchBucket" {
			e.Kind, e.Detail = fs.ErrNotExist, "no such bucket"
		}
		return e
	}
	return transportError(u, op, err)
}

func (b *s3Backend) head(ctx context.Context, u string) (objectInfo, error) {
	bucket, key, err := parseS3(u)
	if err != nil {
		return objectInfo{}, err
	}
	if key == "" {
		return objectInfo{}, &Error{URL: u, Kind: fs.ErrNotExist, Detail: "a bucket is a directory"}
	}
	countRequest()
	out, err := b.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return objectInfo{}, s3Error(u, "HEAD", err)
	}
	info := objectInfo{size: aws.ToInt64(out.ContentLength), version: formats.ObjectVersion{ETag: aws.ToString(out.ETag)}}
	if out.LastModified != nil {
		info.version.LastModified = out.LastModified.UTC()
	}
	if out.ContentLength == nil || info.size < 0 {
		return objectInfo{}, &Error{URL: u, Op: "HEAD", Detail: "the store did not say the object's size"}
	}
	return info, nil
}

func (b *s3Backend) getRange(ctx context.Context, u string, off, n int64, info objectInfo) (io.ReadCloser, error) {
	bucket, key, err := parseS3(u)
	if err != nil {
		return nil, err
	}
	in := &s3.GetObjectInput{Bucket: &bucket, Key: &key, Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, off+n-1))}
	if info.version.ETag != "" {
		in.IfMatch = aws.String(info.version.ETag)
	} else if !info.version.LastModified.IsZero() {
		in.IfUnmodifiedSince = aws.Time(info.version.LastModified)
	}
	out, err := b.client.GetObject(ctx, in)
	if err != nil {
		e := s3Error(u, "GET", err)
		switch e.Status {
		case http.StatusPreconditionFailed:
			e.Kind, e.Detail = errChanged, "its ETag is no longer the one read at open"
		case http.StatusNotFound:
			e.Kind, e.Detail = errChanged, "it is gone"
		case http.StatusRequestedRangeNotSatisfiable:
			e.Kind, e.Detail = errChanged, "it is shorter than it was"
		}
		return nil, e
	}
	fail := func(e *Error) (io.ReadCloser, error) {
		out.Body.Close()
		return nil, e
	}
	if cr := aws.ToString(out.ContentRange); cr != "" {
		start, total, ok := parseContentRange(cr)
		if !ok || start != off {
			return fail(&Error{URL: u, Op: "GET", Detail: fmt.Sprintf("the store answered a request for bytes %d-%d with %q", off, off+n-1, cr)})
		}
		if total >= 0 && total != info.size {
			return fail(&Error{URL: u, Op: "GET", Kind: errChanged, Detail: fmt.Sprintf("its size changed from %d to %d bytes", info.size, total)})
		}
	} else if off != 0 || n != info.size {
		return fail(&Error{URL: u, Op: "GET", Kind: ErrRangeIgnored, Detail: "the store ignored a Range request and answered with the whole object"})
	}
	if etag := aws.ToString(out.ETag); etag != "" && info.version.ETag != "" && etag != info.version.ETag {
		return fail(&Error{URL: u, Op: "GET", Kind: errChanged, Detail: fmt.Sprintf("its ETag was %s and is now %s", info.version.ETag, etag)})
	}
	return out.Body, nil
}

// maxListPages bounds one listing (1000 keys a page).
const maxListPages = 10000

func (b *s3Backend) list(ctx context.Context, u string) ([]fs.DirEntry, error) {
	bucket, prefix, err := parseS3(u)
	if err != nil {
		return nil, err
	}
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	in := &s3.ListObjectsV2Input{Bucket: &bucket, Delimiter: aws.String("/")}
	if prefix != "" {
		in.Prefix = &prefix
	}
	var out []fs.DirEntry
	p := s3.NewListObjectsV2Paginator(b.client, in)
	for pages := 0; p.HasMorePages(); pages++ {
		if pages >= maxListPages {
			return nil, &Error{URL: u, Op: "list", Detail: fmt.Sprintf("the listing has more than %d pages", maxListPages)}
		}
		countRequest()
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, s3Error(u, "list", err)
		}
		for _, cp := range page.CommonPrefixes {
			name := strings.TrimSuffix(strings.TrimPrefix(aws.ToString(cp.Prefix), prefix), "/")
			if plainName(name) {
				out = append(out, dirEntryOf(name))
			}
		}
		for _, o := range page.Contents {
			name := strings.TrimPrefix(aws.ToString(o.Key), prefix)
			if !plainName(name) {
				continue // the directory's own marker object, or a key with an empty element
			}
			v := formats.ObjectVersion{ETag: aws.ToString(o.ETag)}
			if o.LastModified != nil {
				v.LastModified = o.LastModified.UTC()
			}
			out = append(out, fileEntry(name, aws.ToInt64(o.Size), v))
		}
	}
	return out, nil
}

// plainName reports whether a listed name is one path element.
func plainName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.Contains(name, "/")
}
