"""Beam's BigQuery writer pointed at a local emulator, as `runnel run` is.

`runnel run` and Beam's Pub/Sub client honour PUBSUB_EMULATOR_HOST; the
google-cloud-bigquery client honours BIGQUERY_EMULATOR_HOST only for its host
(it still asks for credentials), and Beam's own apitools client not at all
(apache/beam#28149). When BIGQUERY_EMULATOR_HOST is set, `use()` makes
both of the clients Beam's WriteToBigQuery builds talk to the emulator
without credentials. Nothing changes when it is not set, so on Dataflow
Beam's writer runs untouched.
"""

import os

_done = False


def use():
    global _done
    host = os.environ.get("BIGQUERY_EMULATOR_HOST")
    if _done or not host:
        return
    _done = True
    from apache_beam.io.gcp import bigquery_tools
    from apache_beam.io.gcp.internal.clients import bigquery as apitools_bigquery
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    endpoint = host if "://" in host else f"http://{host}"

    class EmulatorClient(bigquery.Client):
        def __init__(self, *args, **kwargs):
            kwargs.update(
                project=kwargs.get("project") or os.environ.get("GOOGLE_CLOUD_PROJECT"),
                credentials=AnonymousCredentials(),
                client_options=ClientOptions(api_endpoint=endpoint),
            )
            super().__init__(*args, **kwargs)

    bigquery_tools.gcp_bigquery.Client = EmulatorClient
    bigquery_tools.BigQueryWrapper._bigquery_client = staticmethod(
        lambda options: apitools_bigquery.BigqueryV2(
            url=f"{endpoint}/bigquery/v2/", get_credentials=False, credentials=None, response_encoding="utf8"
        )
    )
