package cloudwatch

import (
	"context"
	"errors"
	"net"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// errClass is what a CloudWatch Logs error means for the records of the request.
type errClass uint8

const (
	classOK          errClass = iota
	classThrottled            // resend after the pipeline's backoff
	classUnavailable          // 5xx, network, timeout: resend after the backoff
	classNotFound             // group or stream missing: create it and resend
	classInvalid              // the request breaks a rule: split it down to the event at fault
	classDenied               // permissions or credentials: resend slowly, an operator must act
	classExists               // ResourceAlreadyExistsException: success for a create
	classOther                // anything else: resend slowly, never drop
)

// classify is the one place CloudWatch Logs errors are classified.
//
//   - ThrottlingException (the per-account TPS quota), ServiceUnavailableException,
//     InternalFailure, OperationAbortedException, any 5xx, network errors and timeouts are
//     transient.
//   - ResourceNotFoundException: the log group or stream does not exist (yet, or any more).
//   - InvalidParameterException, ValidationException and SerializationException name a request
//     the service refuses as written: resending it unchanged cannot succeed.
//   - AccessDeniedException, UnrecognizedClientException, expired or invalid tokens and
//     credentials that cannot be had: an operator fixes them; until then the records wait.
//   - DataAlreadyAcceptedException is success (no longer returned since sequence tokens went).
func classify(err error) errClass {
	if err == nil {
		return classOK
	}
	// The signer could not get credentials: whatever the provider met on the way (a timeout,
	// a refused connection to IMDS) an operator must give the node an identity.
	var credErr *credentialsError
	if errors.As(err, &credErr) {
		return classDenied
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "DataAlreadyAcceptedException":
			return classOK
		case "ResourceAlreadyExistsException":
			return classExists
		case "ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded":
			return classThrottled
		case "ServiceUnavailableException", "ServiceUnavailable", "InternalFailure", "InternalServerError",
			"OperationAbortedException", "InvalidSequenceTokenException", "RequestTimeout", "RequestTimeoutException":
			return classUnavailable
		case "ResourceNotFoundException":
			return classNotFound
		case "InvalidParameterException", "ValidationException", "SerializationException":
			return classInvalid
		case "AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException",
			"IncompleteSignature", "MissingAuthenticationToken", "ExpiredTokenException", "ExpiredToken",
			"InvalidClientTokenId", "NotAuthorized", "SignatureDoesNotMatch", "KMSInvalidStateException":
			return classDenied
		}
	}
	var respErr *awshttp.ResponseError
	if errors.As(err, &respErr) {
		switch code := respErr.HTTPStatusCode(); {
		case code == 429:
			return classThrottled
		case code >= 500:
			return classUnavailable
		case code == 401 || code == 403:
			return classDenied
		}
		return classOther
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return classUnavailable // a request timeout, or the agent stopping: the records wait
	}
	var netErr net.Error
	var opErr *net.OpError
	if errors.As(err, &netErr) || errors.As(err, &opErr) {
		return classUnavailable
	}
	// Connection reset, unexpected EOF and other transport failures come wrapped in the SDK's
	// request-send error.
	var sendErr *smithyhttp.RequestSendError
	if errors.As(err, &sendErr) {
		return classUnavailable
	}
	return classOther
}

func (c errClass) result() string {
	switch c {
	case classOK, classExists:
		return resultOK
	case classThrottled:
		return resultThrottled
	case classUnavailable:
		return resultUnavailable
	case classNotFound:
		return resultNotFound
	case classInvalid:
		return resultInvalid
	case classDenied:
		return resultDenied
	}
	return resultOther
}
