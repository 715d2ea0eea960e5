package store

var bucketExports = []byte("exports")
