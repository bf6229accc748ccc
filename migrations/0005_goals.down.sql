-- Reverts 0005: drops goals (with policies, trigger and indexes) and the goal_period type.

drop table public.goals;

drop type public.goal_period;
