-- A usage log bigger than a piece (transforms/log_pieces.py, ~128 MB) is validated piece by piece: each piece is a
-- batch with results of its own. first_row is the batch's first record in the delivered file (1 for a file
-- validated whole, as every file before this migration was).
ALTER TABLE audit.validation_results ADD COLUMN first_row BIGINT NOT NULL DEFAULT 1;
