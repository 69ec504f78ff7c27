package bigquery

import (
	_ "embed"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
)

// udfCode is the single message transform Setup attaches to a BigQuery subscription: the
// envelope has no top-level namespace/pod (the clustering columns), and its time has
// nanoseconds where a TIMESTAMP keeps microseconds.
//
//go:embed udf.js
var udfCode string

const udfName = "tailgateEnvelope"

func envelopeTransform() *pubsubpb.MessageTransform {
	return &pubsubpb.MessageTransform{
		Transform: &pubsubpb.MessageTransform_JavascriptUdf{
			JavascriptUdf: &pubsubpb.JavaScriptUDF{FunctionName: udfName, Code: udfCode},
		},
	}
}
