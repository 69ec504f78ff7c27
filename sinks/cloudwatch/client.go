package cloudwatch

import (
	"bytes"
	"context"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Operation names, for metrics and logs.
const (
	opPut          = "PutLogEvents"
	opCreateGroup  = "CreateLogGroup"
	opCreateStream = "CreateLogStream"
	opRetention    = "PutRetentionPolicy"
)

// newClient builds the CloudWatch Logs client: the default credential chain (or anonymous
// credentials for an insecure endpoint, or opts.Credentials), the region, the endpoint, and
// no SDK retries: the sink classifies every error and the pipeline's backoff is the one retry
// layer, so a throttled request is not retried three times inside one Send while the pipeline
// believes it was sent once.
func newClient(ctx context.Context, s *settings, opts Options) (*cloudwatchlogs.Client, error) {
	loadOpts := []func(*config.LoadOptions) error{
		config.WithRegion(s.region),
		config.WithRetryer(func() aws.Retryer { return aws.NopRetryer{} }),
		config.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
			// One idle connection per request in flight, so a steady load reuses them.
			t.MaxIdleConnsPerHost = max(s.maxInFlight*streamParallelism, awshttp.DefaultHTTPTransportMaxIdleConnsPerHost)
		})),
	}
	switch {
	case opts.Credentials != nil:
		loadOpts = append(loadOpts, config.WithCredentialsProvider(opts.Credentials))
	case s.insecure:
		loadOpts = append(loadOpts, config.WithCredentialsProvider(aws.AnonymousCredentials{}))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS config: %w", err)
	}
	cfg.Credentials = markedCredentials{cfg.Credentials}
	return cloudwatchlogs.NewFromConfig(cfg, func(o *cloudwatchlogs.Options) {
		if s.endpoint != "" {
			o.BaseEndpoint = aws.String(s.endpoint)
		}
	}), nil
}

// credentialsError is an error of the credential provider: no credentials could be had (no
// role on the node, IMDS unreachable, a web identity token unreadable). The SDK passes it on
// wrapped in text only ("get identity: get credentials: ..."), so the provider is wrapped to
// mark its errors for classify.
type credentialsError struct{ err error }

func (e *credentialsError) Error() string { return e.err.Error() }
func (e *credentialsError) Unwrap() error { return e.err }

// markedCredentials is the client's credential provider with its errors marked as
// credentialsError. It answers for the provider it wraps when the SDK asks what kind it is (a
// cache, anonymous credentials), so the SDK treats it as it would that provider.
type markedCredentials struct{ aws.CredentialsProvider }

func (p markedCredentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := p.CredentialsProvider.Retrieve(ctx)
	if err != nil {
		return c, &credentialsError{err: err}
	}
	return c, nil
}

func (p markedCredentials) IsCredentialsProvider(target aws.CredentialsProvider) bool {
	return aws.IsCredentialsProvider(p.CredentialsProvider, target)
}

func (p markedCredentials) ProviderSources() []aws.CredentialSource {
	if s, ok := p.CredentialsProvider.(aws.CredentialProviderSource); ok {
		return s.ProviderSources()
	}
	return nil
}

// noEvents satisfies the input validator's "logEvents is required": the events are in the
// body that withBody puts in place of the SDK's serialization.
var noEvents = []types.InputLogEvent{}

// withBody makes one PutLogEvents call send body, a document request.go encoded, instead of
// serializing its input: the events go from the records to the wire in one pass, with no
// InputLogEvent or string per event. Everything else (endpoint, signing, the response and its
// errors) is the SDK's.
func withBody(body []byte) func(*cloudwatchlogs.Options) {
	return func(o *cloudwatchlogs.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			_, err := st.Serialize.Swap("OperationSerializer", rawBody{body})
			return err
		})
	}
}

// rawBody is the serialize step for a prebuilt awsJson1_1 PutLogEvents body.
type rawBody struct{ body []byte }

func (rawBody) ID() string { return "OperationSerializer" }

func (m rawBody) HandleSerialize(ctx context.Context, in middleware.SerializeInput, next middleware.SerializeHandler) (
	middleware.SerializeOutput, middleware.Metadata, error,
) {
	req, ok := in.Request.(*smithyhttp.Request)
	if !ok {
		return middleware.SerializeOutput{}, middleware.Metadata{}, fmt.Errorf("unexpected transport type %T", in.Request)
	}
	req.Method = http.MethodPost
	if req.URL.Path == "" {
		req.URL.Path = "/"
	}
	req.Header.Set("X-Amz-Target", "Logs_20140328.PutLogEvents")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	sreq, err := req.SetStream(bytes.NewReader(m.body))
	if err != nil {
		return middleware.SerializeOutput{}, middleware.Metadata{}, fmt.Errorf("set request body: %w", err)
	}
	in.Request = sreq
	return next.HandleSerialize(ctx, in)
}
