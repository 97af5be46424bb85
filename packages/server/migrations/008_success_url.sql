-- Where the checkout sends the customer once the payment is paid ("Continue"). Validated by the API
-- (https, or http to localhost outside production); null when the merchant gave none.
alter table payments add column success_url text check (length(success_url) <= 2048);
