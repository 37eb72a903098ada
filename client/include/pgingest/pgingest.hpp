// libpgingest: asynchronous batched ingestion into PostgreSQL through the pg_ingest extension.
#pragma once
#include <pgingest/config.hpp>
#include <pgingest/delivery.hpp>
#include <pgingest/metrics.hpp>
#include <pgingest/producer.hpp>
#include <pgingest/row.hpp>
#include <pgingest/status.hpp>
#include <pgingest/transport.hpp>
