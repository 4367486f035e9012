package salesforce

import (
	"context"
	"fmt"
	"net/http"
)

// Limit is one of the org's allocations: its maximum and what is left.
type Limit struct {
	Max       int64 `json:"Max"`
	Remaining int64 `json:"Remaining"`
}

// Limits reads the org's daily API request allocation
// (GET /services/data/vXX.X/limits, DailyApiRequests). The call itself
// counts against the allocation, as every data call does.
//
// https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_limits.htm
func (c *Client) Limits(ctx context.Context) (daily Limit, err error) {
	var out map[string]Limit
	if _, err := c.do(ctx, &request{method: http.MethodGet, path: c.dataPath("limits")}, &out); err != nil {
		return Limit{}, fmt.Errorf("read the org's limits: %w", err)
	}
	d, ok := out["DailyApiRequests"]
	if !ok {
		return Limit{}, fmt.Errorf("read the org's limits: the answer has no DailyApiRequests")
	}
	return d, nil
}

// VersionError says the org does not offer the configured API version.
type VersionError struct {
	Version string   // as configured, e.g. "v99.0"
	Offered []string // what the org offers, oldest first
}

func (e *VersionError) Error() string {
	rng := "none"
	if n := len(e.Offered); n > 0 {
		rng = e.Offered[0] + " to " + e.Offered[n-1]
	}
	return fmt.Sprintf("salesforce: API version %s is not offered by this org (it offers %s): set the API version to one it offers", e.Version, rng)
}
