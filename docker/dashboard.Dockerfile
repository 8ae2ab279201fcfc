# syntax=docker/dockerfile:1
# The hosted dashboard: Voila serving notebooks/dashboard.ipynb, as `make dashboard` does, for the
# aws target. `pulumi up` builds it (context: the repository root, see
# dashboard.Dockerfile.dockerignore), pushes it to the stack's ECR repository and runs it on
# Fargate by digest (infra/dashboard.py). Build it by hand with
#   docker build -f docker/dashboard.Dockerfile -t evk-dashboard .
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLCONFIGDIR=/tmp/matplotlib

WORKDIR /app

# Only what the dashboard imports, at the pins of requirements.txt (no training stack).
COPY requirements.txt /tmp/requirements.txt
RUN grep -E '^(voila|ipykernel|ipywidgets|matplotlib|numpy|pydantic|pyyaml|boto3|requests)==' \
        /tmp/requirements.txt > /tmp/dashboard-requirements.txt \
    && pip install --no-cache-dir -r /tmp/dashboard-requirements.txt \
    && rm /tmp/requirements.txt /tmp/dashboard-requirements.txt

COPY kit/__init__.py kit/aws.py kit/
COPY kit/core kit/core
COPY kit/dashboard kit/dashboard
COPY notebooks/dashboard.ipynb notebooks/dashboard.ipynb

RUN useradd --system --uid 10001 --home-dir /app dashboard \
    && mkdir -p /app/.evk \
    && chown dashboard /app/.evk
USER 10001

# The task's environment adds the stack's settings (EVK_* from infra/program.py).
ENV PYTHONPATH=/app \
    EVK_TARGET=aws \
    EVK_STATE_DIR=/app/.evk

EXPOSE 8866
# Voila with the kit's configuration (kit/dashboard/server.py: a closed page's kernel ends, idle
# ones are culled). The load balancer passes the signed-in user's access token in
# x-amzn-oidc-accesstoken; Voila hands it to the notebook's kernel as HTTP_X_AMZN_OIDC_ACCESSTOKEN
# (kit/dashboard/client.py).
CMD ["python", "-m", "kit.dashboard.server", "--Voila.ip=0.0.0.0", "--port=8866", \
     "--VoilaConfiguration.http_header_envs=['x-amzn-oidc-accesstoken']"]
