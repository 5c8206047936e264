-- function: statement_stats() v3, with keeps_literal(query), command_words(query, keywords),
--           statement_text(query, server_version, keywords) and carries_password(query)
--           (owned by the bundle)
-- grain: one row per statement tracked by pg_stat_statements; a text in which PostgreSQL left a
--        literal shows as its leading keywords only (`ALTER ROLE (text hidden)`), timings kept
-- why: v2 hid the texts a regular expression took for a password; it missed forms PostgreSQL
--      takes as well (issue 31: `alter/**/role r password E'...'`, a subscription's conninfo
--      `'... password=...'`, a server's options, a do block). PostgreSQL's own parse decides
--      instead: pg_stat_statements replaces every constant of a statement it normalises (select,
--      insert, update, delete, merge; since PostgreSQL 16 also set, alter ... set, call, explain,
--      declare, create table as, bare words included) by a numbered parameter. What a text still
--      holds is a literal of a statement it does not normalise: a role's password, a conninfo, a
--      user mapping's or server's options, a function body. So a text shows only when it holds
--      no quote (every string: '', E'', U&'', B'', X''), no dollar sign but a parameter's (a
--      dollar and a digit: dollar quotes are strings; an identifier with a dollar in it is hidden
--      too) and no comment (-- and /*: text the parse never read). Any other shows as its leading
--      words that are PostgreSQL keywords (pg_get_keywords()): no literal is one. Names and
--      numbers stay: they are not secrets. Before PostgreSQL 16 a utility statement keeps its
--      constants, a bare word after `set x =` too: there only select, insert, update, delete,
--      merge, with, values and table texts show.
--      carries_password() keeps v2's name and signature: of the hidden texts, those that name a
--      password or set one (role, user, group, user mapping, server, subscription), what
--      bootstrap removes from the statistics (sparklio_bi/postgres/privileges.py); what the view
--      shows no longer depends on it. statement_stats() runs with its owner's rights (security
--      definer) as v1 does.

create or replace function ${analytics}.keeps_literal(query text)
returns boolean
language sql
immutable
-- chr(39) is the quote and \x24 the dollar sign: the body is itself a quoted string, and the
-- file a string.Template (dollar signs are its own)
as '
    select strpos(query, chr(39)) > 0
        or query ~ ''\x24([^0-9]|\Z)''
        or strpos(query, ''--'') > 0
        or strpos(query, ''/*'') > 0
';

create or replace function ${analytics}.command_words(query text, keywords text[])
returns text
language sql
immutable
-- the leading words that are keywords (at most four), comments read as spaces; statement_stats()
-- reads pg_get_keywords() once for all its rows (it costs 0.3 ms a call)
as '
    with words as (
        select found.word, found.position
        from unnest((regexp_split_to_array(regexp_replace(
            regexp_replace(regexp_replace(query, ''/\*.*?\*/'', '' '', ''g''), ''--[^\n]*'', '' '', ''g''),
            ''^\s+'', ''''), ''\s+''))[1:4]) with ordinality as found (word, position)
    )

    select coalesce(string_agg(upper(word), '' '' order by position), '''')
    from words
    where position < (select coalesce(min(position), 5) from words where lower(word) <> all(keywords))
';

create or replace function ${analytics}.statement_text(query text, server_version integer, keywords text[])
returns text
language sql
immutable
as '
    select case
        when ${analytics}.keeps_literal(query)
            or server_version < 160000
            and split_part(${analytics}.command_words(query, keywords), '' '', 1)
            not in (''SELECT'', ''INSERT'', ''UPDATE'', ''DELETE'', ''MERGE'', ''WITH'', ''VALUES'', ''TABLE'')
            then ltrim(${analytics}.command_words(query, keywords) || '' (text hidden)'')
        else query
    end
';

create or replace function ${analytics}.carries_password(query text)
returns boolean
language sql
immutable
as '
    select ${analytics}.keeps_literal(query)
        and (strpos(lower(query), ''password'') > 0
            or split_part(command.words, '' '', 1) in (''CREATE'', ''ALTER'')
            and split_part(command.words, '' '', 2) in (''ROLE'', ''USER'', ''GROUP'', ''SERVER'', ''SUBSCRIPTION''))
    from (
        select ${analytics}.command_words(query, array(select word from pg_catalog.pg_get_keywords())) as words
    ) as command
';

create or replace function ${analytics}.statement_stats()
returns table (
    query text,
    dbid oid,
    calls bigint,
    mean_exec_time double precision,
    total_exec_time double precision,
    rows bigint
)
language sql
stable
security definer
set search_path = pg_catalog, public
as '
    select
        ${analytics}.statement_text(statements.query, current_setting(''server_version_num'')::integer,
                                    keywords.words) as query,
        statements.dbid, statements.calls, statements.mean_exec_time, statements.total_exec_time, statements.rows
    from pg_stat_statements as statements,
        (select array_agg(word) as words from pg_get_keywords()) as keywords
';
