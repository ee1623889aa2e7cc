package webhooks

// isCallID reports whether s has the shape of a Switchboard call id, "CL" and 24 lowercase
// hex digits. Carriers echo our id back to us (sb_call, client_state, stream parameters);
// checking its shape keeps anything else from becoming a Redis key.
func isCallID[T string | []byte](s T) bool {
	if len(s) != 26 || s[0] != 'C' || s[1] != 'L' {
		return false
	}
	for i := 2; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
