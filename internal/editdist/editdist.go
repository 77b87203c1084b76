package editdist

// MaxLen is the longest string Distance compares; a longer one is limit
// away from everything (the cost is the product of the lengths).
const MaxLen = 64

// Distance returns the Levenshtein distance between a and b, in bytes, or
// limit if it is limit or more (or either string is longer than MaxLen).
func Distance(a, b string, limit int) int {
	if len(a) > MaxLen || len(b) > MaxLen {
		return limit
	}
	if d := len(a) - len(b); d >= limit || -d >= limit {
		return limit
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			rowMin = min(rowMin, cur[j])
		}
		if rowMin >= limit {
			return limit
		}
		prev, cur = cur, prev
	}
	return min(prev[len(b)], limit)
}
