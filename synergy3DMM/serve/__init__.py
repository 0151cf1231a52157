"""The web page and the HTTP service (`python app.py`, `synergy3dmm-serve`).

One module a job:

| module | job |
| --- | --- |
| `settings.py` | the service's settings (its flags declared once), the key rule, passing them to worker processes |
| `errors.py` | the error a request gets: a status, one line, headers |
| `batcher.py` | the faces of concurrent requests through the regressor in one batch |
| `service.py` | the model as a service: admission (a bounded queue), request threads, photo in, faces out |
| `answers.py` | an analysed photo as the files singleImage.py writes (the same output objects), as bytes |
| `uploads.py` | a multipart upload streamed into a per-request temporary folder, with its size limit |
| `metrics.py` | the Prometheus metrics |
| `http.py` | the FastAPI application: the JSON API, health, metrics, errors, the key |
| `page.py` | the Gradio page mounted at `/` |

Only `metrics.py`, `http.py`, `page.py` and `uploads.py` import the `app` extra (FastAPI,
Gradio, prometheus-client, python-multipart); the rest of the library imports without it.
"""
