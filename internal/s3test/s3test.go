// Package s3test gives tests a real S3-compatible server: the SeaweedFS server
// of scripts/s3-test-server.sh, started once per test binary (and stopped when
// the binary exits), a fresh bucket for each test, and an upload of a local
// directory tree through real signed S3 requests. docs/remote-testing.md says
// how the server is built and what it does differently from AWS S3.
package s3test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/ckpt-tool/ckpt/internal/testenv"
)

// The variables naming a server to use instead of starting one (any
// S3-compatible store the key pair may create buckets in).
const (
	EnvEndpoint  = "CKPT_TEST_S3_ENDPOINT"
	EnvAccessKey = "CKPT_TEST_S3_ACCESS_KEY"
	EnvSecretKey = "CKPT_TEST_S3_SECRET_KEY"
	EnvRegion    = "CKPT_TEST_S3_REGION"
)

// Server is an S3-compatible server and the key pair to sign requests with.
// Bucket, when set, is the test's own bucket (see S3).
type Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Region    string
	Bucket    string
}

var (
	startOnce sync.Once
	shared    Server
	missing   string // why there is no server, when that is a missing dependency
	startErr  error
	buckets   atomic.Int64
)

// Start returns the test server: the one CKPT_TEST_S3_ENDPOINT names (with
// CKPT_TEST_S3_ACCESS_KEY, CKPT_TEST_S3_SECRET_KEY and CKPT_TEST_S3_REGION),
// else the one scripts/s3-test-server.sh starts for this test binary (once;
// it stops when the binary exits). Without the server's binary the test stops
// through testenv.Missing: a failure in CI, a skip elsewhere.
func Start(tb testing.TB) Server {
	tb.Helper()
	root := testenv.ModuleRoot(tb)
	startOnce.Do(func() { shared, missing, startErr = start(root) })
	if missing != "" {
		testenv.Missing(tb, missing, "build it with scripts/s3-test-server.sh build (scripts/install-test-deps.sh does)")
	}
	if startErr != nil {
		tb.Fatal(startErr)
	}
	return shared
}

func start(root string) (Server, string, error) {
	if ep := os.Getenv(EnvEndpoint); ep != "" {
		s := Server{Endpoint: ep, AccessKey: os.Getenv(EnvAccessKey), SecretKey: os.Getenv(EnvSecretKey), Region: os.Getenv(EnvRegion)}
		if s.AccessKey == "" || s.SecretKey == "" {
			return s, "", fmt.Errorf("%s is set but %s or %s is not", EnvEndpoint, EnvAccessKey, EnvSecretKey)
		}
		if s.Region == "" {
			s.Region = "us-east-1"
		}
		return s, "", nil
	}
	dir, err := os.MkdirTemp("", "ckpt-test-s3-")
	if err != nil {
		return Server{}, "", err
	}
	script := filepath.Join(root, "scripts", "s3-test-server.sh")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script, "start", dir)
	// The script stops the server, and deletes dir, once this process exits.
	cmd.Env = append(os.Environ(), "CKPT_TEST_S3_OWNER="+strconv.Itoa(os.Getpid()))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		os.Remove(dir)
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.ExitCode() == 3 {
			return Server{}, "the S3 test server is not available (" + strings.TrimSpace(stderr.String()) + ")", nil
		}
		return Server{}, "", fmt.Errorf("starting the S3 test server: %v\n%s", err, stderr.String())
	}
	vars := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "="); ok {
			vars[k] = v
		}
	}
	s := Server{Endpoint: vars["AWS_ENDPOINT_URL"], AccessKey: vars["AWS_ACCESS_KEY_ID"], SecretKey: vars["AWS_SECRET_ACCESS_KEY"], Region: vars["AWS_REGION"]}
	if s.Endpoint == "" || s.AccessKey == "" || s.SecretKey == "" || s.Region == "" {
		return s, "", fmt.Errorf("the S3 test server's start printed no endpoint and key pair:\n%s", out)
	}
	return s, "", nil
}

// S3 returns the test server (Start) with a new empty bucket of the test's
// own in Bucket; the bucket and its objects are deleted when the test ends.
func S3(tb testing.TB) Server {
	tb.Helper()
	s := Start(tb)
	s.Bucket = bucketName(tb.Name(), buckets.Add(1))
	c := s.Client()
	ctx := context.Background()
	// The script waits until the server takes writes; a server named by
	// CKPT_TEST_S3_ENDPOINT may have just started: retry for a few seconds.
	var err error
	for try := 0; try < 50; try++ {
		if _, err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(s.Bucket)}); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		tb.Fatalf("creating bucket %s on %s: %v", s.Bucket, s.Endpoint, err)
	}
	tb.Cleanup(func() {
		if err := deleteBucket(ctx, c, s.Bucket); err != nil {
			tb.Errorf("deleting the test bucket %s: %v", s.Bucket, err)
		}
	})
	return s
}

// bucketName makes a valid, unique bucket name (3-63 characters of a-z, 0-9
// and '-') from a test's name and a counter.
func bucketName(test string, n int64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "ckpt-%d-%d-", os.Getpid(), n)
	for _, r := range strings.ToLower(test) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	name := b.String()
	if len(name) > 63 {
		name = name[:63]
	}
	return strings.TrimRight(name, "-")
}

func deleteBucket(ctx context.Context, c *s3.Client, bucket string) error {
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		if len(page.Contents) == 0 {
			continue
		}
		ids := make([]types.ObjectIdentifier, len(page.Contents))
		for i, o := range page.Contents {
			ids[i] = types.ObjectIdentifier{Key: o.Key}
		}
		out, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket), Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)}})
		if err != nil {
			return err
		}
		if len(out.Errors) > 0 {
			return fmt.Errorf("deleting %s: %s", aws.ToString(out.Errors[0].Key), aws.ToString(out.Errors[0].Message))
		}
	}
	_, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)})
	return err
}

// Client is an S3 client of the server signing with its key pair
// (path-style addressing: http://HOST/BUCKET/KEY). opts adjust it.
func (s Server) Client(opts ...func(*s3.Options)) *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(s.Endpoint),
		Region:       s.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		UsePathStyle: true,
	}, opts...)
}

// URL is the s3:// URL of key in the test's bucket ("" names the bucket).
func (s Server) URL(key string) string {
	return "s3://" + s.Bucket + "/" + key
}

// Env is what a process needs to reach the server through the AWS SDK's
// standard configuration: the endpoint, the key pair and the region, and no
// shared config or credentials file, profile, session token or instance
// metadata of the machine's own. Append it to os.Environ() for a child
// process (the last value of a variable wins), or see Setenv.
func (s Server) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL=" + s.Endpoint,
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_REGION=" + s.Region,
		"AWS_SESSION_TOKEN=",
		"AWS_PROFILE=",
		"AWS_CONFIG_FILE=" + os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull,
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// Setenv sets Env in this process for the rest of the test (with t.Setenv, so
// the test may not be parallel).
func (s Server) Setenv(t *testing.T) {
	t.Helper()
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}
