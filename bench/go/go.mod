module github.com/jina-ai/libjina_net/bench/go

go 1.19

require github.com/jina-ai/libjina_net/bindings/go v0.0.0-00010101000000-000000000000

replace github.com/jina-ai/libjina_net/bindings/go => ../../bindings/go
