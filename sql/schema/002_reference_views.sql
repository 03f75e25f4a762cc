-- Which reference versions are in force, and for which dates of service (docs/reference-data.md).
-- Starter rows count only while no CMS file of the same kind is loaded.

CREATE OR REPLACE VIEW ref_versions AS
WITH active AS (
    SELECT f.* FROM ref_files f
    WHERE NOT f.is_starter
       OR NOT EXISTS (SELECT 1 FROM ref_files o WHERE o.kind = f.kind AND NOT o.is_starter)
), by_version AS (
    SELECT kind, version, bool_or(is_starter) AS is_starter,
           min(coverage_start) AS coverage_start, max(coverage_end) AS coverage_end,
           list(file_id ORDER BY file_id) AS file_ids,
           string_agg(part, ',' ORDER BY part) AS parts
    FROM active GROUP BY kind, version
)
SELECT kind, version, is_starter, coverage_start,
       -- PTP: a release speaks for every DOS up to the end of its quarter (its rows carry history);
       -- MUE: a file covers DOS until the day before the next loaded MUE file takes effect.
       CASE WHEN kind = 'mue'
            THEN lead(coverage_start) OVER (PARTITION BY kind ORDER BY coverage_start) - 1
            ELSE coverage_end END AS coverage_end,
       file_ids, parts
FROM by_version;
