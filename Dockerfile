# One image for every service; docker-compose.yml picks the service with `command`.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1 \
    PATH=/app/.venv/bin:$PATH

RUN pip install --no-cache-dir uv
WORKDIR /app
COPY pyproject.toml uv.lock ./
COPY libs ./libs
COPY services ./services
RUN uv sync --frozen --no-dev --all-packages

RUN useradd --system --uid 10001 cadre
USER cadre
CMD ["python", "-m", "cadre.directory"]
