/**
 * Robot accounts (issue 10 item 4): registry robots (`regauth+ci`, administrators) and
 * namespace robots (`team+ci`, the namespace's admins too). Creating one checks the caller's
 * namespace (Harbor CVE-2019-16919); another namespace's robot is a 404 (CVE-2022-31667).
 */
import { NotFound } from "../errors.ts";
import {
  createRobot as insertRobot,
  deleteRobot as removeRobot,
  findRobot,
  listRobots as readRobots,
  type Robot,
} from "../robots/index.ts";
import { authorizeOrThrow, callerOf } from "./caller.ts";
import type { ManagementContext } from "./context.ts";
import { paginate } from "./paging.ts";
import type { CreateRobotRequest, ListRobotsQuery, Page, PageRequest, RobotView } from "./schemas.ts";
import { record } from "./users.ts";
import { rfc3339, rfc3339OrNull } from "./views.ts";

export function robotView(robot: Robot): RobotView {
  return {
    name: robot.name,
    owner_namespace: robot.ownerNamespace,
    description: robot.description,
    is_enabled: robot.isEnabled,
    created_at: rfc3339(robot.createdAtUnix),
    last_login_at: rfc3339OrNull(robot.lastLoginAtUnix),
  };
}

/** `namespace` absent: every robot you may see (an admin: all; a namespace admin: theirs). */
export function listRobots(
  ctx: ManagementContext,
  filter: ListRobotsQuery = {},
  page: PageRequest = filter,
): Page<RobotView> {
  const caller = callerOf(ctx);
  authorizeOrThrow(caller, { op: "listRobots", namespace: filter.namespace });
  const privileged = caller.kind === "local-admin" || caller.isAdmin;
  const robots =
    filter.namespace !== undefined
      ? readRobots(ctx.db, { ownerNamespace: filter.namespace })
      : readRobots(ctx.db).filter(
          (r) =>
            privileged || (r.ownerNamespace !== null && caller.adminNamespaces.includes(r.ownerNamespace)),
        );
  return paginate(robots, (r) => r.name, page, robotView);
}

function readVisibleRobot(ctx: ManagementContext, name: string, op: "readRobot" | "deleteRobot"): Robot {
  const robot = findRobot(ctx.db, name);
  const missing = `no robot ${JSON.stringify(name)}`;
  authorizeOrThrow(callerOf(ctx), { op, namespace: robot?.ownerNamespace ?? null }, missing);
  if (!robot) throw new NotFound(missing);
  return robot;
}

export function getRobot(ctx: ManagementContext, name: string): RobotView {
  return robotView(readVisibleRobot(ctx, name, "readRobot"));
}

export function createRobot(ctx: ManagementContext, input: CreateRobotRequest): RobotView {
  const namespace = input.namespace ?? null;
  authorizeOrThrow(callerOf(ctx), { op: "createRobot", namespace });
  const robot = insertRobot(ctx.db, {
    ownerNamespace: namespace,
    name: input.name,
    description: input.description ?? "",
    nowUnix: ctx.nowUnix,
  });
  const view = robotView(robot);
  record(ctx, "robot.created", { after: view });
  return view;
}

export function deleteRobot(ctx: ManagementContext, name: string): RobotView {
  const robot = readVisibleRobot(ctx, name, "deleteRobot");
  const view = robotView(removeRobot(ctx.db, robot.name, ctx.nowUnix));
  record(ctx, "robot.deleted", { before: view });
  return view;
}
