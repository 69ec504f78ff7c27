package cloudlogging

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"cloud.google.com/go/compute/metadata"
)

// clusterIdentity fills what the config leaves empty of project, location and cluster name from
// the GCE metadata server (GKE nodes set the cluster-location and cluster-name instance
// attributes; GCE_METADATA_HOST points the client elsewhere, as in tests). It returns a clear
// error naming the keys to set when neither gives them.
func clusterIdentity(ctx context.Context, project, location, cluster string, timeout time.Duration) (string, string, string, error) {
	if project != "" && location != "" && cluster != "" {
		return project, location, cluster, nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := metadata.NewClient(nil)
	var errs []error
	get := func(dst *string, key, what string, fn func(context.Context) (string, error)) {
		if *dst != "" {
			return
		}
		v, err := fn(ctx)
		v = strings.TrimSpace(v)
		if err != nil || v == "" {
			if err == nil {
				err = errors.New("empty")
			}
			errs = append(errs, fmt.Errorf("%s: not set in the config, and the GCE metadata server's %s: %w", key, what, err))
			return
		}
		*dst = v
	}
	get(&project, "project", "project-id", c.ProjectIDWithContext)
	get(&location, "location", "instance attribute cluster-location", func(ctx context.Context) (string, error) {
		return c.InstanceAttributeValueWithContext(ctx, "cluster-location")
	})
	get(&cluster, "cluster_name", "instance attribute cluster-name", func(ctx context.Context) (string, error) {
		return c.InstanceAttributeValueWithContext(ctx, "cluster-name")
	})
	if len(errs) > 0 {
		return "", "", "", fmt.Errorf("the k8s_container resource needs them (set them in the sink's config off GKE): %w", errors.Join(errs...))
	}
	return project, location, cluster, nil
}
