"""Small, deterministic test executors for the interop suite (jina 3.1.0 + docarray 0.9.18).

Every executor is stateless: the same request gives the same response bytes, so that the responses our
library receives can be compared byte for byte with those jina's own GrpcConnectionPool receives.
A worker is named by ``--name`` (``self.runtime_args.name``); that name is what it stamps on documents.
"""
from docarray import Document, DocumentArray
from jina import Executor, requests


class Tagger(Executor):
    """Marks every document with the worker's name and adds one document of its own.

    - each doc: ``tags['by'] = <name>``, ``text += '|<name>'``
    - one new doc ``from-<name>`` (text ``<name>``), so a head that merges the answers of several shards
      (polling ALL) returns one such doc per shard that answered
    - ``parameters['__results__'][<name>]`` is not touched (returning the DocumentArray keeps it clean)
    """

    @requests
    def tag(self, docs: DocumentArray, **kwargs):
        name = self.runtime_args.name
        for d in docs:
            d.tags['by'] = name
            d.text = (d.text or '') + '|' + name
        docs.append(Document(id=f'from-{name}', text=name))
        return docs

    @requests(on='/count')
    def count(self, docs: DocumentArray, docs_matrix=None, **kwargs):
        """Reports what the executor saw: number of docs, their ids (in order) and the docs matrix shape."""
        name = self.runtime_args.name
        ids = ','.join(d.id for d in docs)
        shape = ','.join(str(len(m)) for m in (docs_matrix or []))
        return DocumentArray([Document(id=f'count-{name}', text=f'{len(docs)};{ids};{shape}')])


class Raiser(Executor):
    """Raises on every request: jina answers in-band (status ERROR, exception filled, trailer is-error)."""

    @requests
    def boom(self, docs: DocumentArray, **kwargs):
        raise ValueError('boom from ' + self.runtime_args.name, 42)


class Sleeper(Executor):
    """Computes for a long time in a synchronous method (``time.sleep``) on ``/sleep``: 9 s, longer than
    several HTTP/2 keepalive intervals of the test; on ``/sleep-long`` 30 s. Other endpoints answer at
    once."""

    def _sleep(self, docs, seconds):
        import time

        time.sleep(seconds)
        for d in docs:
            d.tags['slept'] = self.runtime_args.name
        return docs

    @requests(on='/sleep')
    def sleep(self, docs: DocumentArray, **kwargs):
        return self._sleep(docs, 9)

    @requests(on='/sleep-long')
    def sleep_long(self, docs: DocumentArray, **kwargs):
        return self._sleep(docs, 30)
