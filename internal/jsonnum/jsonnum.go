// Package jsonnum reads the integers of the Lambda APIs' JSON the lenient way their examples
// need: the guide writes the same field as 694, 694.0 and "694".
package jsonnum

import (
	"math"
	"strconv"
)

// ParseInt reads s as an integer, written plainly or with a fraction or exponent (the
// fraction is dropped). It refuses anything else, NaN, infinities and values outside int64.
func ParseInt(s string) (int64, bool) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.Abs(f) >= math.MaxInt64 {
		return 0, false
	}
	return int64(f), true
}
