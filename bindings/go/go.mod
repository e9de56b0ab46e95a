module github.com/jina-ai/libjina_net/bindings/go

go 1.19
