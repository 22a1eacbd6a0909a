package formats

// StrictJSONCheck exposes strictJSONCheck to the external tests, which use it to
// explain where the oracle reader (which lacks the check) disagrees.
var StrictJSONCheck = strictJSONCheck
