package simvendor

import "net/http"

// Lists, after https://docs.stripe.com/api/pagination: newest first, limit
// 1 to 100 (default 10), starting_after / ending_before an object's id,
// has_more, and created filtered with created[gt|gte|lt|lte] (Unix
// seconds). A list is consistent: an object is listed as soon as it
// exists, unlike search (stripe_search.go).

// listPage renders one page of a list of rendered objects, newest first.
func (c *stripeCall) listPage(url string, all []obj) (any, *stripeError) {
	limit, set, e := c.p.int("limit")
	switch {
	case e != nil:
		return nil, e
	case !set:
		limit = 10
	case limit < 1 || limit > 100:
		return nil, invalidRequest(http.StatusBadRequest, "parameter_invalid_integer", "limit",
			"This value must be greater than or equal to 1 and less than or equal to 100.")
	}
	var bounds [4]int64
	var has [4]bool
	for i, op := range []string{"gt", "gte", "lt", "lte"} {
		if bounds[i], has[i], e = c.p.int("created[" + op + "]"); e != nil {
			return nil, e
		}
	}
	var kept []obj
	for _, o := range all {
		t, _ := o["created"].(int64)
		if has[0] && t <= bounds[0] || has[1] && t < bounds[1] || has[2] && t >= bounds[2] || has[3] && t > bounds[3] {
			continue
		}
		kept = append(kept, o)
	}
	after, before := c.p.str("starting_after"), c.p.str("ending_before")
	if after != "" && before != "" {
		return nil, invalidRequest(http.StatusBadRequest, "", "starting_after", "You may only specify one of these parameters: ending_before, starting_after.")
	}
	lo, hi := 0, len(kept)
	for i, o := range kept {
		switch o["id"] {
		case after:
			lo = i + 1
		case before:
			hi = i
		}
	}
	page := []any{}
	if before != "" {
		lo = max(hi-int(limit), 0)
	}
	for i := lo; i < hi && len(page) < int(limit); i++ {
		page = append(page, kept[i])
	}
	more := lo+len(page) < hi
	if before != "" {
		more = lo > 0
	}
	return obj{"object": "list", "data": page, "has_more": more, "url": url}, nil
}
