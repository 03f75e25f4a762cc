-- Reference data: partial is not complete (docs/reference-data.md).
--   parts_expected : PTP releases come as several part files (f1..f4); how many this release has, as
--                    known when the file was imported: from the CMS zip ('zip'), the user ('user', refdata
--                    import --parts N) or the practitioner default of 4 ('default')
--   truncated      : the file ends mid-row (rows after the cut are missing)
--   replaced_by    : a corrected re-download of the same kind, version and part replaced this file
--                    (its rows are removed; the row stays as the record of the replacement)
ALTER TABLE ref_files ADD COLUMN IF NOT EXISTS parts_expected INTEGER;
ALTER TABLE ref_files ADD COLUMN IF NOT EXISTS parts_source VARCHAR;
ALTER TABLE ref_files ADD COLUMN IF NOT EXISTS truncated BOOLEAN DEFAULT false;
ALTER TABLE ref_files ADD COLUMN IF NOT EXISTS replaced_by INTEGER;
ALTER TABLE ref_files ADD COLUMN IF NOT EXISTS replaced_at TIMESTAMP;

-- Which versions are in force, for which dates, and whether they are complete. An incomplete version
-- is never used (its rule rows are left out of the rule inputs); its dates are unchecked for the
-- family with incomplete_reason as the reason (REF-001). The starter set counts only while no CMS
-- file of its kind is loaded.
CREATE OR REPLACE VIEW ref_versions AS
WITH current AS (
    SELECT * FROM ref_files WHERE replaced_by IS NULL
), active AS (
    SELECT f.* FROM current f
    WHERE NOT f.is_starter
       OR NOT EXISTS (SELECT 1 FROM current o WHERE o.kind = f.kind AND NOT o.is_starter)
), by_version AS (
    SELECT kind, version, bool_or(is_starter) AS is_starter,
           min(coverage_start) AS coverage_start, max(coverage_end) AS coverage_end,
           list(file_id ORDER BY file_id) AS file_ids,
           string_agg(part, ',' ORDER BY part) AS parts,
           list(TRY_CAST(substr(part, 2) AS INTEGER)) FILTER (WHERE part IS NOT NULL) AS part_numbers,
           arg_max(parts_expected, file_id) AS parts_expected,
           list(coalesce(part, 'the file') ORDER BY part) FILTER (WHERE truncated) AS truncated_parts
    FROM active GROUP BY kind, version
), judged AS (
    SELECT *,
           CASE WHEN kind = 'ptp' AND NOT is_starter
                THEN list_filter(range(1, greatest(coalesce(parts_expected, 4), list_max(part_numbers)) + 1),
                                 lambda n: NOT list_contains(part_numbers, n))
                ELSE [] END AS missing_parts
    FROM by_version
)
SELECT kind, version, is_starter, coverage_start,
       -- PTP: a release speaks for every DOS up to the end of its quarter (its rows carry history);
       -- MUE: a file covers DOS until the day before the next loaded MUE file takes effect.
       CASE WHEN kind = 'mue'
            THEN lead(coverage_start) OVER (PARTITION BY kind ORDER BY coverage_start) - 1
            ELSE coverage_end END AS coverage_end,
       file_ids, parts, parts_expected,
       list_transform(missing_parts, lambda n: 'f' || n) AS missing_parts,
       CASE WHEN len(missing_parts) > 0
            THEN 'release ' || version || ' incomplete: part' || CASE WHEN len(missing_parts) > 1 THEN 's ' ELSE ' ' END
                 || array_to_string(list_transform(missing_parts, lambda n: 'f' || n), ', ') || ' missing'
                 || coalesce('; ' || array_to_string(truncated_parts, ', ') || ' truncated', '')
            WHEN len(coalesce(truncated_parts, [])) > 0
            THEN CASE kind WHEN 'ptp' THEN 'release ' ELSE 'MUE file ' END || version || ' incomplete: '
                 || array_to_string(truncated_parts, ', ') || ' truncated (ends mid-row)'
            END AS incomplete_reason
FROM judged;
